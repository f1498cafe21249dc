"""A conversation's priority and its SLA as routing applies them: the priority score with its
reasons (a hand-set bucket kept), the due times of first response, next response and
resolution from the queue's policy and the team's calendar, and a breach recorded once."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from django.db import transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from apps.core.db import rows_update
from apps.inbox.models import Conversation, Message, Status

from . import calendar as cal
from .assignment import ASSIGNABLE_STATUSES
from .config_cache import RoutingCache, sla_policy_for
from .models import ConversationRouting, SlaPolicy
from .scoring import BUCKET_NAMES, PriorityInputs, priority_score
from .trail import Trail

DONE_STATUSES = (Status.RESOLVED, Status.CLOSED)



def waiting_since_many(conversation_ids) -> dict[int, dt.datetime]:
    """conversation id -> the oldest customer message after the last human reply
    (bots don't count); absent: nobody waits. One query for a batch."""
    conversation_ids = list(conversation_ids)
    if not conversation_ids:
        return {}
    answered = Message.objects.filter(conversation_id=OuterRef("conversation_id"), direction=Message.Direction.OUTBOUND,
                                      is_bot=False, sent_at__gte=OuterRef("sent_at")).exclude(
        send_status=Message.SendStatus.FAILED)
    rows = (Message.objects.filter(conversation_id__any=conversation_ids, direction=Message.Direction.INBOUND)
            .exclude(Exists(answered)).values("conversation_id").annotate(since=Min("sent_at")).order_by())
    return {row["conversation_id"]: row["since"] for row in rows}


def waiting_since(conversation: Conversation) -> dt.datetime | None:
    return waiting_since_many([conversation.pk]).get(conversation.pk)


def minutes_since(since: dt.datetime | None, now: dt.datetime) -> float:
    return max(0.0, (now - since).total_seconds() / 60) if since else 0.0


def priority_apply(conversation: Conversation, state: ConversationRouting, inputs: PriorityInputs, trail: Trail,
                    *, why: str) -> bool:
    """Scores and stores; records "priority_set" when the score or bucket moved.
    A bucket a person chose (not the one routing last set) is left alone."""
    result = priority_score(inputs)
    manual = state.bucket_set is not None and conversation.priority_bucket != state.bucket_set
    bucket = conversation.priority_bucket if manual else result.bucket
    first = not state.reasons  # the first score of a cycle is always explained, even if it equals the default
    changed = first or conversation.priority != result.score or conversation.priority_bucket != bucket
    state.inputs, state.reasons = inputs.to_json(), result.reasons
    if not manual:
        state.bucket_set = bucket
    if changed:
        conversation.priority, conversation.priority_bucket = result.score, bucket
        trail.event(conversation, "priority_set", score=result.score,
                    bucket=BUCKET_NAMES[bucket], reasons=result.reasons, why=why,
                    # one readable line for the thread's audit trail
                    reason=f"{result.score} ({BUCKET_NAMES[bucket]}{', kept as set by hand' if manual else ''}): "
                           + "; ".join(result.reasons),
                    **({"kept_manual_bucket": True} if manual else {}))
    return changed


@dataclass(frozen=True)
class SlaDues:
    first_response: dt.datetime | None
    next_response: dt.datetime | None
    resolution: dt.datetime | None

    def pending(self, conversation: Conversation, waiting: bool) -> dict[str, dt.datetime]:
        if conversation.status in DONE_STATUSES or conversation.is_spam:
            return {}
        out = {}
        if self.first_response and conversation.first_response_at is None:
            out["first_response"] = self.first_response
        if self.next_response and waiting and conversation.status != Status.PENDING:
            out["next_response"] = self.next_response
        if self.resolution:
            out["resolution"] = self.resolution
        return out


def sla_dues(conversation: Conversation, state: ConversationRouting,
              cache: RoutingCache | None = None) -> tuple[SlaDues, SlaPolicy | None]:
    cache = cache or RoutingCache()
    policy = sla_policy_for(queue_id=conversation.queue_id, bucket=conversation.priority_bucket,
                            policies=cache.policies)
    if policy is None:
        return SlaDues(None, None, None), None
    calendar = None
    queue = cache.queues.get(conversation.queue_id) if conversation.queue_id else None
    if policy.business_hours_only and queue is not None:
        calendar = cache.calendar(queue.team_id)
    start = conversation.cycle_started_at or conversation.created_at

    def due(since, minutes):
        return cal.add_minutes(since, minutes, calendar) if since and minutes is not None else None

    return SlaDues(
        first_response=due(start, policy.first_response_minutes),
        # only after a first response: before it, the first-response target is the one that runs
        next_response=(due(state.waiting_since, policy.next_response_minutes)
                       if conversation.first_response_at else None),
        resolution=due(start, policy.resolution_minutes),
    ), policy


def breach_key(target: str, due: dt.datetime) -> str:
    return f"{target}@{due.isoformat()}"


def sla_apply(conversation: Conversation, state: ConversationRouting, now: dt.datetime, trail: Trail, *,
               record: bool = True, cache: RoutingCache | None = None) -> list[str]:
    """Sets the due times and sla_due_at (earliest pending); records breaches of
    pending targets already past due. Returns the targets breached now."""
    dues, policy = sla_dues(conversation, state, cache)
    pending = dues.pending(conversation, waiting=state.waiting_since is not None)
    before = (conversation.first_response_due_at, conversation.next_response_due_at, conversation.resolution_due_at)
    conversation.first_response_due_at = dues.first_response
    conversation.next_response_due_at = dues.next_response
    conversation.resolution_due_at = dues.resolution
    conversation.sla_due_at = min(pending.values()) if pending else None
    state.sla_policy = policy
    breached_now = []
    for target, due in sorted(pending.items(), key=lambda kv: kv[1]):
        key = breach_key(target, due)
        if due <= now and key not in state.breached_targets:
            state.breached_targets = [*state.breached_targets, key]
            breached_now.append(target)
            conversation.sla_breached = True
            trail.event(conversation, "sla_breached", target=target, due_at=due.isoformat(),
                        reason=f"{target.replace('_', ' ')} was due {due:%Y-%m-%d %H:%M} UTC")
            trail.push("sla_breached", conversation.pk, target=target, due_at=due.isoformat())
    unchecked = [d for t, d in pending.items() if breach_key(t, d) not in state.breached_targets]
    state.sla_next_check_at = min(unchecked) if unchecked else None
    after = (dues.first_response, dues.next_response, dues.resolution)
    if record and after != before:
        trail.event(
            conversation, "sla_set", policy=policy.name if policy else None,
            policy_id=policy.pk if policy else None, business_hours=bool(policy and policy.business_hours_only),
            first_response_due_at=iso_or_none(dues.first_response), next_response_due_at=iso_or_none(dues.next_response),
            resolution_due_at=iso_or_none(dues.resolution),
            reason=sla_line(policy, dues),
        )
    return breached_now


def sla_line(policy: SlaPolicy | None, dues: SlaDues) -> str:
    if policy is None:
        return "no SLA policy applies"
    parts = [f"{label} by {due:%Y-%m-%d %H:%M} UTC" for label, due in (
        ("first response", dues.first_response), ("next response", dues.next_response),
        ("resolution", dues.resolution)) if due]
    hours = " (business hours)" if policy.business_hours_only else ""
    return f"{policy.name}{hours}: " + ", ".join(parts)


def iso_or_none(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


SLA_FIELDS = ["first_response_due_at", "next_response_due_at", "resolution_due_at", "sla_due_at", "sla_breached"]


# --- beat: waiting conversations climb, due targets are checked ---------------------------------

def priorities_age(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Waiting conversations climb: rescored with the time they have waited.
    Returns how many changed."""
    now = now or timezone.now()
    answered = Message.objects.filter(conversation=OuterRef("conversation_id"), direction=Message.Direction.OUTBOUND,
                                      is_bot=False, sent_at__gte=OuterRef("waiting_since"))
    ids = list(ConversationRouting.objects.filter(
        waiting_since__isnull=False, conversation__status__in=ASSIGNABLE_STATUSES, conversation__is_spam=False,
    ).values_list("conversation_id", flat=True).order_by("waiting_since")[:50_000])
    changed = 0
    for start in range(0, len(ids), batch):
        trail = Trail()
        with transaction.atomic():
            # conversation rows first, then routing state: the order every writer uses
            locked = list(Conversation.objects.select_for_update(skip_locked=True)
                          .filter(pk__in=ids[start:start + batch]).values_list("pk", flat=True))
            states = list(ConversationRouting.objects.select_for_update(of=("self",))
                          .filter(conversation_id__in=locked)
                          .annotate(answered=Exists(answered)).select_related("conversation"))
            moved = []
            for state in states:
                conversation = state.conversation
                if state.answered:
                    state.waiting_since = None
                inputs = replace(PriorityInputs.from_json(state.inputs),
                                 waiting_minutes=minutes_since(state.waiting_since, now))
                old_bucket = conversation.priority_bucket
                if priority_apply(conversation, state, inputs, trail, why="aging"):
                    moved.append(conversation)
                    if conversation.priority_bucket != old_bucket:
                        trail.push("priority_changed", conversation.pk, priority_bucket=conversation.priority_bucket)
                state.updated_at = now
            # Two statements a batch: row by row this was two a conversation, and with 40,000 waiting
            # (a team over capacity) a run held a routing worker and PostgreSQL ~15 s, its batches'
            # locks in the way of ingest routing the same conversations' new messages
            rows_update(moved, ["priority", "priority_bucket"])
            rows_update(states, ["inputs", "reasons", "bucket_set", "waiting_since", "updated_at"])
            changed += len(moved)
            trail.write()
    return changed


def sla_breaches_check(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Beat: pending targets past due become "sla_breached" events and a push to
    supervisors; met targets move sla_due_at on. Returns conversation ids breached."""
    now = now or timezone.now()
    ids = list(ConversationRouting.objects.filter(sla_next_check_at__lte=now)
               .order_by("sla_next_check_at").values_list("conversation_id", flat=True)[:limit])
    breached = []
    for conversation_id in ids:
        trail = Trail()
        with transaction.atomic():
            conversation = (Conversation.objects.select_for_update(skip_locked=True, of=("self",))
                            .filter(pk=conversation_id).first())
            if conversation is None:
                continue  # a router holds it; the next run sees it
            state = ConversationRouting.objects.select_for_update().get(conversation=conversation)
            if state.waiting_since and conversation.status not in DONE_STATUSES:
                state.waiting_since = waiting_since(conversation)
            if sla_apply(conversation, state, now, trail, record=False):
                breached.append(conversation.pk)
            conversation.save(update_fields=[*SLA_FIELDS, "updated_at"])
            state.save()
            trail.write()
    return breached

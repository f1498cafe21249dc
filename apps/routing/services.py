"""Routing: what happens to a conversation after its messages are stored.

conversation_route (queue `routing`): language + sentiment -> rules (at the
start of each cycle) -> priority score -> SLA due times -> assignment.

Locks, so two workers never double-assign or overfill an agent: a routing
transaction locks its conversation, then the candidate agents in one
statement ordered by id; a backlog drain locks the team's agents the same way,
then takes waiting conversations with SKIP LOCKED (never waits on a row a
router holds). Every assignment to an agent happens under that agent's row
lock, so the load counted under it is the real one."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from apps.accounts.models import Presence, Role, Team, User
from apps.core.errors import DomainError
from apps.inbox.events import event_record
from apps.inbox.models import Conversation, Message, PriorityBucket, Status, Tag
from apps.inbox.realtime import inbox_push
from apps.insights.services import message_analyze

from . import calendar as cal
from .models import BusinessHours, ConversationRouting, Holiday, Queue, QueueMemberState, RoutingRule, SlaPolicy
from .rules import RuleContext, rule_matches
from .scoring import BUCKET_NAMES, PriorityInputs, priority_score, urgency_terms

log = logging.getLogger(__name__)
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
ASSIGNABLE_STATUSES = (Status.NEW, Status.OPEN)
DONE_STATUSES = (Status.RESOLVED, Status.CLOSED)


def _push_on_commit(kind: str, conversation_id: int, **data) -> None:
    transaction.on_commit(lambda: inbox_push(kind, conversation_id, **data))


# --- calendars and policies ------------------------------------------------------------------------

def calendar_for_team(team_id: int | None) -> cal.Calendar | None:
    """The team's business hours, or None (always open) when it has none."""
    if team_id is None:
        return None
    hours = BusinessHours.objects.filter(team_id=team_id).first()
    if hours is None:
        return None
    holidays = frozenset(Holiday.objects.filter(business_hours=hours).values_list("date", flat=True))
    return cal.Calendar(time_zone=hours.time_zone, schedule=hours.schedule, holidays=holidays)


def sla_policy_for(*, queue_id: int | None, bucket: int, policies: list[SlaPolicy] | None = None) -> SlaPolicy | None:
    """Most specific active policy: queue+bucket, queue, bucket, global."""
    if policies is None:
        policies = SlaPolicy.objects.filter(is_active=True).filter(
            Q(queue_id=queue_id) | Q(queue__isnull=True)).filter(
            Q(priority_bucket=bucket) | Q(priority_bucket__isnull=True))
    candidates = [p for p in policies if p.is_active and p.queue_id in (queue_id, None)
                  and p.priority_bucket in (bucket, None)]
    best, best_rank = None, -1
    for policy in candidates:
        rank = (2 if policy.queue_id else 0) + (1 if policy.priority_bucket is not None else 0)
        if rank > best_rank:
            best, best_rank = policy, rank
    return best


class RoutingCache:
    """Configuration read once per routing batch (rules, SLA policies, queues,
    calendars), not once per conversation. A batch is one task: an edit shows
    from the next task on."""

    def __init__(self):
        self._rules = self._policies = self._queues = None
        self._calendars: dict[int | None, cal.Calendar | None] = {}

    @property
    def rules(self) -> list[RoutingRule]:
        if self._rules is None:
            self._rules = list(RoutingRule.objects.filter(is_active=True).select_related(
                "set_queue", "assign_agent", "assign_team", "auto_reply").prefetch_related("channel_accounts"))
        return self._rules

    @property
    def policies(self) -> list[SlaPolicy]:
        if self._policies is None:
            self._policies = list(SlaPolicy.objects.filter(is_active=True))
        return self._policies

    @property
    def queues(self) -> dict[int, Queue]:
        if self._queues is None:
            self._queues = {q.pk: q for q in Queue.objects.all()}
        return self._queues

    @property
    def default_queue(self) -> Queue | None:
        defaults = sorted((q for q in self.queues.values() if q.is_default), key=lambda q: q.pk)
        return defaults[0] if defaults else None

    def calendar(self, team_id: int | None) -> cal.Calendar | None:
        if team_id not in self._calendars:
            self._calendars[team_id] = calendar_for_team(team_id)
        return self._calendars[team_id]


# --- agents and loads ------------------------------------------------------------------------------

def _lock_agents(*, team_id: int | None = None, ids=()) -> dict[int, User]:
    """Row-locks the team's online agents and the agents named by id, in id order
    (one statement, so every locker takes them in the same order: no deadlock
    between routers and drains)."""
    ids = sorted(set(i for i in ids if i))
    if not ids and not team_id:
        return {}
    members = Team.members.through.objects.filter(team_id=team_id or 0)
    wanted = Q(pk__in=ids) | Q(pk__in=members.values("user_id"), role=Role.AGENT, is_active=True,
                               presence=Presence.ONLINE)
    agents = (User.objects.select_for_update(of=("self",)).filter(wanted)
              .annotate(in_team=Exists(members.filter(user_id=OuterRef("pk")))).order_by("pk"))
    return {u.pk: u for u in agents}


def _team_candidates(locked: dict[int, User]) -> list[User]:
    return [a for a in locked.values() if a.in_team and a.role == Role.AGENT and _available(a)]


@dataclass
class _Loads:
    total: dict[int, int] = field(default_factory=dict)
    by_channel: dict[tuple[int, str], int] = field(default_factory=dict)


def _loads(agent_ids) -> _Loads:
    loads = _Loads()
    rows = (Conversation.objects.filter(assignee_id__in=list(agent_ids), status__in=OPEN_STATUSES)
            .values("assignee_id", "channel_account__provider").annotate(n=Count("id")))
    for row in rows:
        aid, provider = row["assignee_id"], row["channel_account__provider"]
        loads.total[aid] = loads.total.get(aid, 0) + row["n"]
        loads.by_channel[(aid, provider)] = row["n"]
    return loads


def _has_room(agent: User, loads: _Loads, provider: str) -> bool:
    if loads.total.get(agent.pk, 0) >= agent.capacity:
        return False
    if provider in (agent.channel_capacity or {}):
        return loads.by_channel.get((agent.pk, provider), 0) < agent.capacity_for(provider)
    return True


def _available(agent: User | None) -> bool:
    return bool(agent and agent.is_active and agent.presence == Presence.ONLINE)


class _Picker:
    """Chooses among locked agents by the queue's mode, keeping loads current."""

    def __init__(self, agents: list[User], queue: Queue | None, mode: str):
        self.agents, self.queue, self.mode = agents, queue, mode
        self.loads = _loads([a.pk for a in agents])
        self.last: dict[int, dt.datetime] = {}
        if queue is not None:
            self.last = dict(QueueMemberState.objects.filter(queue=queue, agent__in=[a.pk for a in agents])
                             .values_list("agent_id", "last_assigned_at"))

    def pick(self, provider: str, exclude=()) -> User | None:
        epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        room = [a for a in self.agents if a.pk not in exclude and _has_room(a, self.loads, provider)]
        if not room:
            return None
        if self.mode == Queue.AssignmentMode.LEAST_LOADED:
            key = lambda a: (self.loads.total.get(a.pk, 0), self.last.get(a.pk, epoch), a.pk)  # noqa: E731
        else:
            key = lambda a: (self.last.get(a.pk, epoch), a.pk)  # noqa: E731
        return min(room, key=key)

    def took(self, agent: User, provider: str, now: dt.datetime) -> None:
        self.loads.total[agent.pk] = self.loads.total.get(agent.pk, 0) + 1
        self.loads.by_channel[(agent.pk, provider)] = self.loads.by_channel.get((agent.pk, provider), 0) + 1
        self.last[agent.pk] = now
        if self.queue is not None:
            # under the agent's row lock: no one else writes this row now
            if not QueueMemberState.objects.filter(queue=self.queue, agent=agent).update(last_assigned_at=now):
                QueueMemberState.objects.create(queue=self.queue, agent=agent, last_assigned_at=now)


def _assign(conversation: Conversation, agent: User, *, by: str, reason: str) -> None:
    old = conversation.assignee
    conversation.assignee = agent
    conversation.last_assignee = agent
    Conversation.objects.filter(pk=conversation.pk).update(assignee=agent, last_assignee=agent,
                                                           updated_at=timezone.now())
    event_record(conversation=conversation, kind="assigned", by=by, reason=reason, to=agent.username,
                 **{"from": old.username if old else None})
    _push_on_commit("assigned", conversation.pk, assignee_id=agent.pk)


# --- priority and SLA ------------------------------------------------------------------------------

def _waiting_since(conversation: Conversation) -> dt.datetime | None:
    """The oldest customer message after the last human reply (bots don't count)."""
    answered = Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND,
                                      is_bot=False, sent_at__gte=OuterRef("sent_at")).exclude(
        send_status=Message.SendStatus.FAILED)
    return (Message.objects.filter(conversation=conversation, direction=Message.Direction.INBOUND)
            .exclude(Exists(answered)).order_by("sent_at").values_list("sent_at", flat=True).first())


def _minutes(since: dt.datetime | None, now: dt.datetime) -> float:
    return max(0.0, (now - since).total_seconds() / 60) if since else 0.0


def _priority_apply(conversation: Conversation, state: ConversationRouting, inputs: PriorityInputs, *,
                    why: str) -> bool:
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
        event_record(conversation=conversation, kind="priority_set", score=result.score,
                     bucket=BUCKET_NAMES[bucket], reasons=result.reasons, why=why,
                     # one readable line for the thread's audit trail
                     reason=f"{result.score} ({BUCKET_NAMES[bucket]}{', kept as set by hand' if manual else ''}): "
                            + "; ".join(result.reasons),
                     **({"kept_manual_bucket": True} if manual else {}))
    return changed


@dataclass(frozen=True)
class _Dues:
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


def _sla_dues(conversation: Conversation, state: ConversationRouting,
              cache: RoutingCache | None = None) -> tuple[_Dues, SlaPolicy | None]:
    cache = cache or RoutingCache()
    policy = sla_policy_for(queue_id=conversation.queue_id, bucket=conversation.priority_bucket,
                            policies=cache.policies)
    if policy is None:
        return _Dues(None, None, None), None
    calendar = None
    queue = cache.queues.get(conversation.queue_id) if conversation.queue_id else None
    if policy.business_hours_only and queue is not None:
        calendar = cache.calendar(queue.team_id)
    start = conversation.cycle_started_at or conversation.created_at

    def due(since, minutes):
        return cal.add_minutes(since, minutes, calendar) if since and minutes is not None else None

    return _Dues(
        first_response=due(start, policy.first_response_minutes),
        # only after a first response: before it, the first-response target is the one that runs
        next_response=(due(state.waiting_since, policy.next_response_minutes)
                       if conversation.first_response_at else None),
        resolution=due(start, policy.resolution_minutes),
    ), policy


def _breach_key(target: str, due: dt.datetime) -> str:
    return f"{target}@{due.isoformat()}"


def _sla_apply(conversation: Conversation, state: ConversationRouting, now: dt.datetime, *,
               record: bool = True, cache: RoutingCache | None = None) -> list[str]:
    """Sets the due times and sla_due_at (earliest pending); records breaches of
    pending targets already past due. Returns the targets breached now."""
    dues, policy = _sla_dues(conversation, state, cache)
    pending = dues.pending(conversation, waiting=state.waiting_since is not None)
    before = (conversation.first_response_due_at, conversation.next_response_due_at, conversation.resolution_due_at)
    conversation.first_response_due_at = dues.first_response
    conversation.next_response_due_at = dues.next_response
    conversation.resolution_due_at = dues.resolution
    conversation.sla_due_at = min(pending.values()) if pending else None
    state.sla_policy = policy
    breached_now = []
    for target, due in sorted(pending.items(), key=lambda kv: kv[1]):
        key = _breach_key(target, due)
        if due <= now and key not in state.breached_targets:
            state.breached_targets = [*state.breached_targets, key]
            breached_now.append(target)
            conversation.sla_breached = True
            event_record(conversation=conversation, kind="sla_breached", target=target, due_at=due.isoformat(),
                         reason=f"{target.replace('_', ' ')} was due {due:%Y-%m-%d %H:%M} UTC")
            _push_on_commit("sla_breached", conversation.pk, target=target, due_at=due.isoformat())
    unchecked = [d for t, d in pending.items() if _breach_key(t, d) not in state.breached_targets]
    state.sla_next_check_at = min(unchecked) if unchecked else None
    after = (dues.first_response, dues.next_response, dues.resolution)
    if record and after != before:
        event_record(
            conversation=conversation, kind="sla_set", policy=policy.name if policy else None,
            policy_id=policy.pk if policy else None, business_hours=bool(policy and policy.business_hours_only),
            first_response_due_at=_iso(dues.first_response), next_response_due_at=_iso(dues.next_response),
            resolution_due_at=_iso(dues.resolution),
            reason=_sla_line(policy, dues),
        )
    return breached_now


def _sla_line(policy: SlaPolicy | None, dues: _Dues) -> str:
    if policy is None:
        return "no SLA policy applies"
    parts = [f"{label} by {due:%Y-%m-%d %H:%M} UTC" for label, due in (
        ("first response", dues.first_response), ("next response", dues.next_response),
        ("resolution", dues.resolution)) if due]
    hours = " (business hours)" if policy.business_hours_only else ""
    return f"{policy.name}{hours}: " + ", ".join(parts)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


SLA_FIELDS = ["first_response_due_at", "next_response_due_at", "resolution_due_at", "sla_due_at", "sla_breached"]


# --- rules -----------------------------------------------------------------------------------------

@dataclass
class _RuleOutcome:
    queue: Queue | None = None
    bucket: int | None = None
    boost: int = 0
    rule_name: str = ""
    tags: list[str] = field(default_factory=list)
    agent: User | None = None
    team: Team | None = None
    auto_reply: object = None
    disposition: str = ""


def _rules_run(conversation: Conversation, ctx: RuleContext, cache: RoutingCache) -> _RuleOutcome:
    """Applies active rules in order. A rule that fails is logged on the
    conversation ("rule_error") and skipped: it never blocks routing."""
    outcome = _RuleOutcome()
    for rule in cache.rules:
        try:
            matched, why = rule_matches(rule, ctx, {a.pk for a in rule.channel_accounts.all()})
        except Exception as exc:  # noqa: BLE001 - any failure of one rule is logged and skipped
            log.warning("routing rule %s failed on conversation %s: %s", rule.pk, conversation.pk, exc)
            event_record(conversation=conversation, kind="rule_error", rule_id=rule.pk, rule=rule.name,
                         error=str(exc)[:500], reason=f"skipped: {str(exc)[:200]}")
            continue
        if not matched:
            continue
        actions = []
        if rule.set_queue_id:
            outcome.queue = rule.set_queue
            actions.append(f"queue {rule.set_queue.name}")
        if rule.set_priority_bucket is not None:
            outcome.bucket, outcome.rule_name = rule.set_priority_bucket, rule.name
            actions.append(f"priority {BUCKET_NAMES[rule.set_priority_bucket]}")
        if rule.priority_boost:
            outcome.boost += rule.priority_boost
            outcome.rule_name = rule.name
            actions.append(f"priority {rule.priority_boost:+d}")
        for tag in rule.add_tags or []:
            if str(tag).strip() and str(tag).strip() not in outcome.tags:
                outcome.tags.append(str(tag).strip()[:64])
        if rule.add_tags:
            actions.append("tags " + ", ".join(str(t) for t in rule.add_tags))
        if rule.assign_agent_id:
            outcome.agent = rule.assign_agent
            actions.append(f"assign {rule.assign_agent.username}")
        if rule.assign_team_id:
            outcome.team = rule.assign_team
            actions.append(f"assign team {rule.assign_team.name}")
        if rule.auto_reply_id:
            outcome.auto_reply = rule.auto_reply
            actions.append(f"auto-reply /{rule.auto_reply.shortcut}")
        if rule.disposition:
            outcome.disposition = rule.disposition
            actions.append(rule.disposition)
        if rule.stop:
            actions.append("stop")
        event_record(conversation=conversation, kind="routed", rule_id=rule.pk, rule=rule.name, why=why,
                     actions=actions, reason=f"{', '.join(why)} → {', '.join(actions) or 'no action'}")
        if rule.stop:
            break
    return outcome


def _auto_reply_text(canned, conversation: Conversation) -> str:
    try:
        from apps.inbox.canned import canned_render
    except ImportError:  # pragma: no cover - older inbox without variables
        return canned.text
    from types import SimpleNamespace

    team = SimpleNamespace(first_name="", username="", display_name="", last_name="", signature="")
    return canned_render(canned.text, conversation=conversation, agent=team)


# --- the pipeline ----------------------------------------------------------------------------------

def conversations_route(*, pairs) -> list[int]:
    """A batch ([(conversation_id, message_ids), ...]) with one configuration read.
    Each conversation in its own transaction; returns the ids that failed (the
    caller retries those alone)."""
    cache, failed = RoutingCache(), []
    for conversation_id, message_ids in pairs:
        try:
            conversation_route(conversation_id=conversation_id, message_ids=message_ids, cache=cache)
        except Exception:  # noqa: BLE001 - one conversation must not stop the batch
            log.warning("routing #%s failed in a batch", conversation_id, exc_info=True)
            failed.append(conversation_id)
    return failed


def conversation_route(*, conversation_id: int, message_ids: list[int],
                       cache: RoutingCache | None = None) -> Conversation:
    now = timezone.now()
    cache = cache or RoutingCache()
    auto_reply = None
    with transaction.atomic():
        conversation = (Conversation.objects.select_for_update(of=("self",))
                        .select_related("channel_account", "identity", "customer", "queue", "assignee",
                                        "last_assignee").get(pk=conversation_id))
        messages = list(Message.objects.filter(pk__in=message_ids, conversation=conversation,
                                               direction=Message.Direction.INBOUND).order_by("sent_at", "id"))
        for message in messages:
            message_analyze(message=message)
        scored = [m for m in messages if m.sentiment is not None]
        fields = {"updated_at"}
        if scored:
            if conversation.first_sentiment is None:
                conversation.first_sentiment = scored[0].sentiment
            conversation.last_sentiment = scored[-1].sentiment
            fields |= {"first_sentiment", "last_sentiment"}
        if messages and not conversation.language:
            conversation.language = next((m.language for m in messages if m.language), "")
            fields.add("language")
        # under the conversation's row lock, so no savepoint dance for the first time
        state = (ConversationRouting.objects.select_for_update().filter(conversation=conversation).first()
                 or ConversationRouting.objects.create(conversation=conversation))
        if conversation.status in DONE_STATUSES or conversation.is_spam:
            conversation.save(update_fields=list(fields))
            state.save()
            return conversation

        cycle = conversation.cycle_started_at or conversation.created_at
        new_cycle = state.rules_cycle_at != cycle
        reopened = new_cycle and state.rules_cycle_at is not None
        inputs = PriorityInputs.from_json(state.inputs) if not new_cycle else PriorityInputs()
        outcome = _RuleOutcome()
        if new_cycle:
            state.rules_cycle_at, state.breached_targets, state.bucket_set, state.reasons = cycle, [], None, []
            ctx = _rule_context(conversation, messages, cache)
            outcome = _rules_run(conversation, ctx, cache)
            inputs = replace(inputs, rule_boost=outcome.boost, bucket_override=outcome.bucket,
                             rule_name=outcome.rule_name)
            _queue_set(conversation, outcome, cache)
            fields.add("queue")
            if outcome.tags:
                conversation.tags.add(*[Tag.objects.get_or_create(name=name)[0] for name in outcome.tags])
            if outcome.disposition:
                _disposition_apply(conversation, state, outcome.disposition)
                conversation.save()
                state.save()
                _push_on_commit("conversation_updated", conversation.pk)
                return conversation

        # priority: the cycle's urgency terms add up; sentiment is the latest customer mood
        urgency = dict(inputs.urgency)
        for message in messages:
            for kind, term in urgency_terms(message.text).items():
                urgency.setdefault(kind, term)
        state.waiting_since = _waiting_since(conversation)
        identity = conversation.identity
        inputs = replace(
            inputs, sentiment=conversation.last_sentiment, urgency=urgency, followers=identity.followers_count,
            verified=identity.verified, vip=conversation.customer.tier == "vip", is_public=conversation.is_public,
            waiting_minutes=_minutes(state.waiting_since, now),
        )
        _priority_apply(conversation, state, inputs, why="new message" if not new_cycle else "routed")
        fields |= {"priority", "priority_bucket"}
        _sla_apply(conversation, state, now, cache=cache)
        fields |= set(SLA_FIELDS)
        conversation.save(update_fields=list(fields))

        if conversation.assignee_id is None:
            _assign_on_route(conversation, outcome, reopened=reopened, now=now)
        state.save()
        if outcome.auto_reply is not None:
            auto_reply = outcome.auto_reply
        _push_on_commit("conversation_updated", conversation.pk)
    if auto_reply is not None:
        _auto_reply_send(conversation, auto_reply)
    return conversation


def _rule_context(conversation: Conversation, messages: list[Message], cache: RoutingCache) -> RuleContext:
    last_scored = next((m for m in reversed(messages) if m.sentiment_label), None)
    queue = conversation.queue if conversation.queue_id else cache.default_queue

    def inside_hours(team_id):
        # the rule's team, else the team of the queue the conversation is in (or will default to)
        calendar = cache.calendar(team_id or (queue.team_id if queue else None))
        return True if calendar is None else calendar.is_open(timezone.now())

    customer = conversation.customer
    tags = customer.tags if isinstance(customer.tags, list) else []
    return RuleContext(
        text="\n".join(m.text for m in messages) or conversation.subject,
        channel=conversation.channel_account.provider, channel_account_id=conversation.channel_account_id,
        language=conversation.language or (messages[0].language if messages else ""),
        sentiment_label=last_scored.sentiment_label if last_scored else "not_scored",
        followers=conversation.identity.followers_count, customer_tags=frozenset(str(t) for t in tags),
        customer_tier=customer.tier, is_public=conversation.is_public, inside_hours=inside_hours,
    )


def _queue_set(conversation: Conversation, outcome: _RuleOutcome, cache: RoutingCache) -> None:
    queue = outcome.queue
    if queue is None and outcome.team is not None:
        queue = outcome.team.queues.order_by("-is_default", "name").first()
    if queue is not None:
        if conversation.queue_id != queue.pk:
            conversation.queue = queue
        return
    if conversation.queue_id is None:
        default = cache.default_queue
        conversation.queue = default
        why = ["no rule chose a queue"] if default else ["no rule chose a queue; no default queue"]
        event_record(conversation=conversation, kind="routed", rule_id=None, rule=None, why=why,
                     actions=[f"queue {default.name}"] if default else [],
                     reason=f"default queue {default.name}" if default else why[0])


def _disposition_apply(conversation: Conversation, state: ConversationRouting, disposition: str) -> None:
    old = conversation.status
    conversation.status = Status.CLOSED
    conversation.is_spam = disposition == "spam"
    for name in SLA_FIELDS[:4]:
        setattr(conversation, name, None)
    state.sla_next_check_at = None
    event_record(conversation=conversation, kind="status_changed", old=old, new=Status.CLOSED,
                 reason="spam (routing rule)" if conversation.is_spam else "ignored (routing rule)")


def _assign_on_route(conversation: Conversation, outcome: _RuleOutcome, *, reopened: bool,
                     now: dt.datetime) -> User | None:
    provider = conversation.channel_account.provider
    queue = conversation.queue
    team_id = outcome.team.pk if outcome.team else (queue.team_id if queue else None)
    mode = (Queue.AssignmentMode.LEAST_LOADED if outcome.team else
            (queue.assignment_mode if queue else Queue.AssignmentMode.MANUAL))
    wants_team = outcome.team is not None or mode != Queue.AssignmentMode.MANUAL
    last = conversation.last_assignee if reopened else None
    locked = _lock_agents(team_id=team_id if wants_team else None,
                          ids=[outcome.agent.pk if outcome.agent else None, last.pk if last else None])

    if outcome.agent is not None and outcome.agent.pk in locked:
        # a supervisor's rule names the agent: their explicit choice, even if busy
        _assign(conversation, locked[outcome.agent.pk], by="rule", reason="routing rule")
        return conversation.assignee
    if last is not None and last.pk in locked:
        agent = locked[last.pk]
        if _available(agent) and _has_room(agent, _loads([agent.pk]), provider):
            _assign(conversation, agent, by="last_assignee", reason="reopened: back to the last agent")
            return agent
    if not wants_team:
        return None
    picker = _Picker(_team_candidates(locked), queue if not outcome.team else None, mode)
    agent = picker.pick(provider)
    if agent is None:
        event_record(conversation=conversation, kind="queued", queue=queue.name if queue else None,
                     reason="no online agent with free capacity; waits in the queue")
        return None
    picker.took(agent, provider, now)
    by = "rule" if outcome.team else mode
    _assign(conversation, agent, by=by, reason=f"team {outcome.team.name}" if outcome.team else
            f"{Queue.AssignmentMode(mode).label.lower()} in {queue.name}")
    return agent


def _auto_reply_send(conversation: Conversation, canned) -> None:
    from apps.inbox.services import reply_create

    try:
        reply_create(conversation=conversation, agent=None, text=_auto_reply_text(canned, conversation),
                     is_bot=True)
    except DomainError as exc:
        # the routing itself stands; the trail says why no auto-reply went out
        event_record(conversation=conversation, kind="rule_error", rule=None, error=f"auto-reply: {exc.detail}",
                     reason=f"auto-reply not sent: {exc.detail}")


# --- backlog and availability ----------------------------------------------------------------------

def backlog_drain(*, queue_id: int, exclude_agent_ids=(), now: dt.datetime | None = None) -> list[int]:
    """Assigns waiting conversations of an auto-assigning queue, urgent and
    oldest first, while its online agents have room. Returns the ids assigned."""
    now = now or timezone.now()
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None or queue.assignment_mode == Queue.AssignmentMode.MANUAL:
        return []
    assigned = []
    with transaction.atomic():
        agents = _team_candidates(_lock_agents(team_id=queue.team_id))
        if not agents:
            return []
        picker = _Picker(agents, queue, queue.assignment_mode)
        room = sum(max(0, a.capacity - picker.loads.total.get(a.pk, 0)) for a in agents)
        if room <= 0:
            return []
        waiting = list(
            Conversation.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel_account")
            .filter(queue=queue, assignee__isnull=True, status__in=ASSIGNABLE_STATUSES, is_spam=False)
            .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
            .order_by("priority_bucket", "cycle_started_at", "id")[:room]
        )
        for conversation in waiting:
            provider = conversation.channel_account.provider
            agent = picker.pick(provider, exclude=exclude_agent_ids)
            if agent is None:
                continue
            picker.took(agent, provider, now)
            _assign(conversation, agent, by=queue.assignment_mode,
                    reason=f"backlog of {queue.name}: {Queue.AssignmentMode(queue.assignment_mode).label.lower()}")
            assigned.append(conversation.pk)
    return assigned


def agent_available(*, agent_id: int) -> list[int]:
    """Drains the backlog of every auto-assigning queue of the agent's teams."""
    agent = User.objects.filter(pk=agent_id).first()
    if not _available(agent):
        return []
    assigned = []
    for queue_id in (Queue.objects.filter(team__members=agent).exclude(
            assignment_mode=Queue.AssignmentMode.MANUAL).order_by("id").values_list("pk", flat=True)):
        assigned += backlog_drain(queue_id=queue_id)
    return assigned


def agent_availability_changed(*, agent) -> None:
    """An agent came online or has room again (a conversation resolved, closed,
    or moved away): drain the backlog of their queues on the `routing` queue,
    after the caller's transaction commits."""
    from .tasks import agent_available_task

    agent_id = agent.pk
    transaction.on_commit(lambda: agent_available_task.delay(agent_id))


def conversation_work_changed(*, conversation_id: int, freed_agent_id: int | None = None) -> None:
    """Called by inbox services (reply, status, assignment): after commit, the
    SLA due times are brought up to date, and a freed agent gets new work."""
    from .tasks import conversation_followup_task

    transaction.on_commit(lambda: conversation_followup_task.delay(conversation_id, freed_agent_id))


def conversation_followup(*, conversation_id: int, freed_agent_id: int | None = None) -> None:
    now = timezone.now()
    with transaction.atomic():
        conversation = (Conversation.objects.select_for_update(of=("self",)).select_related("queue")
                        .filter(pk=conversation_id).first())
        if conversation is None:
            return
        state = (ConversationRouting.objects.select_for_update().filter(conversation=conversation).first()
                 or ConversationRouting.objects.create(conversation=conversation))
        state.waiting_since = _waiting_since(conversation) if conversation.status not in DONE_STATUSES else None
        _sla_apply(conversation, state, now, record=False)
        conversation.save(update_fields=SLA_FIELDS)
        state.save()
    if freed_agent_id:
        agent_available(agent_id=freed_agent_id)
    if (conversation.assignee_id is None and conversation.queue_id and conversation.status in ASSIGNABLE_STATUSES
            and not conversation.is_spam):
        backlog_drain(queue_id=conversation.queue_id, exclude_agent_ids=(freed_agent_id,) if freed_agent_id else ())


# --- beat: aging and SLA breaches ------------------------------------------------------------------

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
        with transaction.atomic():
            # conversation rows first, then routing state: the order every writer uses
            locked = list(Conversation.objects.select_for_update(skip_locked=True)
                          .filter(pk__in=ids[start:start + batch]).values_list("pk", flat=True))
            states = list(ConversationRouting.objects.select_for_update(of=("self",))
                          .filter(conversation_id__in=locked)
                          .annotate(answered=Exists(answered)).select_related("conversation"))
            for state in states:
                conversation = state.conversation
                if state.answered:
                    state.waiting_since = None
                inputs = replace(PriorityInputs.from_json(state.inputs),
                                 waiting_minutes=_minutes(state.waiting_since, now))
                old_bucket = conversation.priority_bucket
                if _priority_apply(conversation, state, inputs, why="aging"):
                    Conversation.objects.filter(pk=conversation.pk).update(
                        priority=conversation.priority, priority_bucket=conversation.priority_bucket)
                    changed += 1
                    if conversation.priority_bucket != old_bucket:
                        _push_on_commit("priority_changed", conversation.pk,
                                        priority_bucket=conversation.priority_bucket)
                state.save(update_fields=["inputs", "reasons", "bucket_set", "waiting_since", "updated_at"])
    return changed


def sla_breaches_check(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Beat: pending targets past due become "sla_breached" events and a push to
    supervisors; met targets move sla_due_at on. Returns conversation ids breached."""
    now = now or timezone.now()
    ids = list(ConversationRouting.objects.filter(sla_next_check_at__lte=now)
               .order_by("sla_next_check_at").values_list("conversation_id", flat=True)[:limit])
    breached = []
    for conversation_id in ids:
        with transaction.atomic():
            conversation = (Conversation.objects.select_for_update(skip_locked=True, of=("self",))
                            .filter(pk=conversation_id).first())
            if conversation is None:
                continue  # a router holds it; the next run sees it
            state = ConversationRouting.objects.select_for_update().get(conversation=conversation)
            if state.waiting_since and conversation.status not in DONE_STATUSES:
                state.waiting_since = _waiting_since(conversation)
            if _sla_apply(conversation, state, now, record=False):
                breached.append(conversation.pk)
            conversation.save(update_fields=[*SLA_FIELDS, "updated_at"])
            state.save()
    return breached


# --- configuration writes (supervisors) ------------------------------------------------------------

def _audit(actor, action: str, target, data: dict | None = None) -> None:
    try:
        from apps.accounts.services import audit_record
    except ImportError:  # pragma: no cover
        return
    audit_record(actor=actor, action=action, target=str(target), data=data or {})


RULE_FIELDS = [
    "name", "position", "is_active", "channels", "keywords", "regex", "languages", "sentiments", "min_followers",
    "max_followers", "customer_tags", "customer_tiers", "hours", "hours_team", "visibility", "set_queue",
    "set_priority_bucket", "priority_boost", "add_tags", "assign_agent", "assign_team", "auto_reply",
    "disposition", "stop",
]


def _rule_check(rule: RoutingRule) -> None:
    import re

    if rule.regex:
        try:
            re.compile(rule.regex)
        except re.error as exc:
            raise DomainError(f"The regular expression does not compile: {exc}.") from None
    for name in ("channels", "keywords", "languages", "sentiments", "customer_tags", "customer_tiers", "add_tags"):
        value = getattr(rule, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DomainError(f"{name} must be a list of strings.")
    bad = set(rule.sentiments) - {"positive", "neutral", "negative", "not_scored"}
    if bad:
        raise DomainError(f"Unknown sentiment(s): {', '.join(sorted(bad))}.")
    if not -50 <= rule.priority_boost <= 50:
        raise DomainError("The priority boost must be between -50 and 50.")
    if rule.min_followers is not None and rule.max_followers is not None and rule.min_followers > rule.max_followers:
        raise DomainError("Minimum followers is above the maximum.")


@transaction.atomic
def rule_create(*, actor, channel_accounts=None, **values) -> RoutingRule:
    rule = RoutingRule(**{k: v for k, v in values.items() if k in RULE_FIELDS})
    if "position" not in values:  # a new rule goes last
        last = RoutingRule.objects.order_by("-position").values_list("position", flat=True).first()
        rule.position = (last or 0) + 10
    _rule_check(rule)
    rule.save()
    if channel_accounts is not None:
        rule.channel_accounts.set(channel_accounts)
    _audit(actor, "rule.created", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk})
    return rule


@transaction.atomic
def rule_update(*, rule: RoutingRule, actor, channel_accounts=None, **values) -> RoutingRule:
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    changed = {}
    for key, value in values.items():
        if key in RULE_FIELDS and getattr(rule, key) != value:
            changed[key] = str(value)[:200]
            setattr(rule, key, value)
    _rule_check(rule)
    rule.save()
    if channel_accounts is not None:
        rule.channel_accounts.set(channel_accounts)
        changed["channel_accounts"] = [a.pk if hasattr(a, "pk") else a for a in channel_accounts]
    _audit(actor, "rule.updated", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk, "changed": changed})
    return rule


@transaction.atomic
def rule_delete(*, rule: RoutingRule, actor) -> None:
    _audit(actor, "rule.deleted", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk})
    rule.delete()


@transaction.atomic
def rules_reorder(*, rule_ids: list[int], actor) -> list[RoutingRule]:
    """Positions 10, 20, 30... in the given order; rules not listed keep theirs after."""
    if len(set(rule_ids)) != len(rule_ids):
        raise DomainError("A rule is listed twice in the new order.")
    rules = {r.pk: r for r in RoutingRule.objects.select_for_update().filter(pk__in=rule_ids)}
    if len(rules) != len(rule_ids):
        raise DomainError("Unknown rule id in the new order.")
    for index, rule_id in enumerate(rule_ids):
        rules[rule_id].position = (index + 1) * 10
        rules[rule_id].save(update_fields=["position", "updated_at"])
    _audit(actor, "rule.reordered", "rules", {"order": rule_ids})
    return [rules[i] for i in rule_ids]


SLA_POLICY_FIELDS = ["name", "queue", "priority_bucket", "first_response_minutes", "next_response_minutes",
                     "resolution_minutes", "business_hours_only", "is_active"]


def _sla_policy_check(policy: SlaPolicy) -> None:
    if not any([policy.first_response_minutes, policy.next_response_minutes, policy.resolution_minutes]):
        raise DomainError("Set at least one target (first response, next response or resolution).")
    if policy.priority_bucket is not None and policy.priority_bucket not in PriorityBucket.values:
        raise DomainError("Priority must be 0 (urgent) to 3 (low), or empty for all.")
    clash = SlaPolicy.objects.filter(is_active=True, queue=policy.queue, priority_bucket=policy.priority_bucket)
    if policy.is_active and clash.exclude(pk=policy.pk).exists():
        raise DomainError("An active policy for this queue and priority exists already.")


@transaction.atomic
def sla_policy_create(*, actor, **values) -> SlaPolicy:
    policy = SlaPolicy(**{k: v for k, v in values.items() if k in SLA_POLICY_FIELDS})
    _sla_policy_check(policy)
    policy.save()
    _audit(actor, "sla.created", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk})
    return policy


@transaction.atomic
def sla_policy_update(*, policy: SlaPolicy, actor, **values) -> SlaPolicy:
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    changed = {}
    for key, value in values.items():
        if key in SLA_POLICY_FIELDS and getattr(policy, key) != value:
            changed[key] = str(value)
            setattr(policy, key, value)
    _sla_policy_check(policy)
    policy.save()
    _audit(actor, "sla.updated", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk,
                                                                            "changed": changed})
    return policy


@transaction.atomic
def sla_policy_delete(*, policy: SlaPolicy, actor) -> None:
    _audit(actor, "sla.deleted", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk})
    policy.delete()


@transaction.atomic
def business_hours_set(*, team: Team, actor, time_zone: str | None = None, schedule: dict | None = None,
                       holidays: list[dict] | None = None) -> BusinessHours:
    """Creates or updates a team's hours; `holidays` ([{date, name}]) replaces the list."""
    hours, _ = BusinessHours.objects.select_for_update().get_or_create(team=team, defaults={
        "time_zone": team.time_zone or "UTC"})
    try:
        if time_zone is not None:
            cal.time_zone_check(time_zone)
            hours.time_zone = time_zone
        if schedule is not None:
            cal.schedule_parse(schedule)
            hours.schedule = schedule
    except cal.CalendarError as exc:
        raise DomainError(str(exc)) from None
    hours.save()
    if holidays is not None:
        seen = set()
        for item in holidays:
            if item["date"] in seen:
                raise DomainError(f"{item['date']} is listed twice.")
            seen.add(item["date"])
        Holiday.objects.filter(business_hours=hours).delete()
        Holiday.objects.bulk_create([Holiday(business_hours=hours, date=item["date"], name=item.get("name", ""))
                                     for item in holidays])
    _audit(actor, "business_hours.updated", f"team {team.pk} {team.name}",
           {"time_zone": hours.time_zone, "holidays": len(holidays) if holidays is not None else None})
    return hours


@transaction.atomic
def business_hours_delete(*, hours: BusinessHours, actor) -> None:
    _audit(actor, "business_hours.deleted", f"team {hours.team_id}", {"team_id": hours.team_id})
    hours.delete()

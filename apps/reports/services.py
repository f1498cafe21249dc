"""Writes for reports: the metric events. (Rollups: rollups.py; handle time:
handle_time.py; surveys: surveys.py; spike alerts: spikes.py.)

Metric events come from:
- `metrics_record_for_event` / `metrics_record_for_audit_rows`, for the audit rows the
  inbox signals (apps/reports/receivers.py) in the transaction that writes them (cycle
  starts, replies sent, resolutions, SLA breaches);
- inbound.py's `inbound_messages_record`, run by the `reports.apply_rollups` task: one
  "msg_in" per customer message once routing has run for it (id watermark), and the
  first cycle's "opened" with the queue routing chose;
- handle_time.py (closed work sessions) and surveys.py (sent, answered), through
  `metric_event_emit`.
Every event has a unique `key`, so a redelivered task or a repeated audit row
never counts a fact twice. Rollups are applied later by `reports.apply_rollups`.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import router, transaction
from django.utils import timezone

from apps.core.db import rows_insert
from apps.core.task_queue import task_named
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.routing.calendar import WEEKDAYS, Calendar
from apps.routing.models import BusinessHours, Holiday

from . import metrics
from .models import ConversationMetricState, MetricEvent

log = logging.getLogger(__name__)

AUDIT_KINDS = {"created", "reopened", "status_changed", "reply_sent", "sla_breached", "marked_spam", "spam_marked",
               "unmarked_spam"}


# --- metric events ------------------------------------------------------------

def conversation_dims(conversation: Conversation, agent_id: int | None = None) -> dict:
    team_id = 0
    if conversation.queue_id:
        team_id = conversation.queue.team_id
    if agent_id is None:
        agent_id = conversation.assignee_id or 0
    return {
        "conversation_id": conversation.pk, "channel": conversation.channel_account.provider,
        "account_id": conversation.channel_account_id, "queue_id": conversation.queue_id or 0,
        "team_id": team_id, "agent_id": agent_id or 0, "customer_id": conversation.customer_id,
    }


def metric_event_emit(*, key: str, kind: str, occurred_at: dt.datetime, dims: dict, cycle: int = 0, value=None,
                      value_bh=None, data: dict | None = None) -> MetricEvent | None:
    if MetricEvent.objects.filter(key=key).exists():
        return None  # counted before: a retry or a repeated hook
    return MetricEvent.objects.create(key=key, kind=kind, occurred_at=occurred_at, cycle=cycle, value=value,
                                      value_bh=value_bh, data=data or {}, **dims)


def _calendar(conversation: Conversation) -> Calendar:
    """Business hours for response metrics: the calendar of the queue's team
    (routing's BusinessHours and holidays, the ones its SLAs use); a team
    without one, or no queue, falls back to REPORTS_BUSINESS_HOURS in the
    team's time zone (else the account's)."""
    team = conversation.queue.team if conversation.queue_id else None
    if team is not None:
        hours = BusinessHours.objects.filter(team_id=team.pk).first()
        if hours is not None:
            holidays = frozenset(Holiday.objects.filter(business_hours=hours).values_list("date", flat=True))
            return Calendar(time_zone=hours.time_zone or "UTC", schedule=hours.schedule, holidays=holidays)
    conf = getattr(settings, "REPORTS_BUSINESS_HOURS", {})
    tz_name = team.time_zone if team is not None else conversation.channel_account.time_zone
    interval = [[conf.get("opens", "09:00"), conf.get("closes", "17:00")]]
    days = set(conf.get("days", (0, 1, 2, 3, 4)))
    return Calendar(time_zone=tz_name or "UTC",
                    schedule={name: interval for i, name in enumerate(WEEKDAYS) if i in days})


def _durations(conversation: Conversation, start: dt.datetime, end: dt.datetime) -> tuple[float, float]:
    seconds = max(0.0, (end - start).total_seconds())
    return seconds, _calendar(conversation).working_seconds(start, end)


def _state(conversation: Conversation) -> ConversationMetricState:
    state = ConversationMetricState.objects.select_for_update().filter(conversation_id=conversation.pk).first()
    if state is None:
        state = ConversationMetricState.objects.create(
            conversation_id=conversation.pk, cycle=1,
            cycle_started_at=conversation.cycle_started_at or conversation.created_at or timezone.now())
    return state


def cycle_event(conversation_id: int, state: ConversationMetricState, dims: dict) -> MetricEvent:
    """The cycle's opened/reopened event (unsaved)."""
    kind = "opened" if state.cycle == 1 else "reopened"
    # A cycle starts with the customer, not an agent (whoever the task found assigned when it
    # read the message was chance): per-agent rates count the cycles an agent handled instead.
    return MetricEvent(key=f"{kind}:{conversation_id}:{state.cycle}", kind=kind, occurred_at=state.cycle_started_at,
                       cycle=state.cycle, **{**dims, "agent_id": 0})


def _cycle_count(conversation: Conversation, state: ConversationMetricState, dims: dict | None = None) -> None:
    """Writes the cycle's opened/reopened event once (a key counted before is skipped, as
    metric_event_emit skips it)."""
    if state.cycle_counted:
        return
    rows_insert([cycle_event(conversation.pk, state, dims or conversation_dims(conversation))],
                ignore_conflicts=True)
    state.cycle_counted = True
    state.save(update_fields=["cycle_counted"])
    # Repeat contacts are not decided here (an agent's reopen starts a cycle too): the rollups
    # derive them from the customer's messages after a resolution (repeat_contacts.repeat_contact_increments).


def _cycle_start(conversation: Conversation, state: ConversationMetricState, started_at: dt.datetime) -> None:
    if state.resolved:
        _final_resolution_undo(conversation, state.cycle)  # that resolve was not the final one
    state.cycle += 1
    state.cycle_started_at = started_at
    state.cycle_counted = state.first_response_done = state.resolved = False
    state.dismissed = 0
    state.sla_decided = []
    state.save()
    _cycle_count(conversation, state)
    if conversation.assignee_id:
        _handled(conversation, state, conversation.assignee_id)  # still assigned: handles the new cycle


def _due_in_cycle(due: dt.datetime | None, state: ConversationMetricState) -> bool:
    """A due time before the cycle started is a leftover of an earlier cycle."""
    return due is not None and due >= state.cycle_started_at


def _sla_outcome(conversation, state, *, target: str, met: bool, at: dt.datetime, agent_id=None,
                 due: dt.datetime | None = None) -> None:
    if target in state.sla_decided:
        return
    kind = "sla_met" if met else "sla_breached"
    if not met and due is not None:
        at = due  # a breach counts at its due time, whenever the monitor, a reply or a resolve noticed it
    metric_event_emit(key=f"sla:{conversation.pk}:{state.cycle}:{target}", kind=kind, occurred_at=at,
                      dims=conversation_dims(conversation, agent_id), cycle=state.cycle, data={"target": target})
    state.sla_decided = [*state.sla_decided, target]
    state.save(update_fields=["sla_decided"])


def _reply_sent(conversation: Conversation, state: ConversationMetricState, message_id: int, at: dt.datetime) -> None:
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return
    human = not message.is_bot and message.author_user_id is not None
    dims = conversation_dims(conversation, message.author_user_id or 0)
    metric_event_emit(key=f"out:{message.pk}", kind="msg_out" if human else "msg_out_bot", occurred_at=at, dims=dims,
                      cycle=state.cycle)
    if not human:
        return  # auto-replies and survey links are not a response
    # The replier handled this cycle. (Not every assignment: recording one inside routing's
    # transaction cut the ingest path from ~1,500 to ~450 mentions/s, bench/ab_ingest; an agent
    # who was assigned and never answered did not handle it.)
    _handled(conversation, state, message.author_user_id)
    if not MetricEvent.objects.filter(key=f"frtc:{conversation.pk}").exists():
        # once per conversation: from its first customer message, whatever reopened meanwhile
        seconds, business = _durations(conversation, _first_contact(conversation, state), at)
        metric_event_emit(key=f"frtc:{conversation.pk}", kind="first_response_conv", occurred_at=at, dims=dims,
                          cycle=state.cycle, value=seconds, value_bh=business)
    if not state.first_response_done:
        seconds, business = _durations(conversation, state.cycle_started_at, at)
        metric_event_emit(key=f"frt:{conversation.pk}:{state.cycle}", kind="first_response", occurred_at=at, dims=dims,
                          cycle=state.cycle, value=seconds, value_bh=business)
        state.first_response_done = True
        state.save(update_fields=["first_response_done"])
        if _due_in_cycle(conversation.first_response_due_at, state):
            _sla_outcome(conversation, state, target="first_response", met=at <= conversation.first_response_due_at,
                         at=at, agent_id=message.author_user_id, due=conversation.first_response_due_at)
    # Reply time: from the first customer message not yet answered by a human,
    # counted from the later of the previous human reply and this cycle's start.
    previous = (Message.objects.filter(conversation_id=conversation.pk, direction=Message.Direction.OUTBOUND,
                                       is_bot=False, author_user__isnull=False,
                                       send_status=Message.SendStatus.SENT, sent_at__lt=message.sent_at)
                .exclude(pk=message.pk).order_by("-sent_at", "-id").values_list("sent_at", flat=True).first())
    inbound = Message.objects.filter(conversation_id=conversation.pk, direction=Message.Direction.INBOUND,
                                     sent_at__lte=message.sent_at)
    if previous and previous >= state.cycle_started_at:
        inbound = inbound.filter(sent_at__gt=previous)
    else:
        inbound = inbound.filter(sent_at__gte=state.cycle_started_at)
    waiting = inbound.order_by("sent_at", "id").values_list("sent_at", flat=True).first()
    if waiting is not None:
        seconds, business = _durations(conversation, waiting, at)
        metric_event_emit(key=f"reply:{message.pk}", kind="reply", occurred_at=at, dims=dims, cycle=state.cycle, value=seconds,
                          value_bh=business)


def _dismissed(conversation: Conversation, state: ConversationMetricState, event) -> None:
    """Spam or ignored: out of the backlog and the resolution rate, never a resolution."""
    if state.resolved or state.dismissed:
        return
    if not state.cycle_counted:
        state.cycle_counted, state.dismissed = True, 2  # never counted: nothing to take back
    else:
        metric_event_emit(key=f"dismissed:{conversation.pk}:{state.cycle}:{event.pk}", kind="dismissed",
                          occurred_at=event.created_at, dims=conversation_dims(conversation, 0), cycle=state.cycle)
        state.dismissed = 1
        _cohort_dismissed(conversation, event, 1)
    state.save(update_fields=["cycle_counted", "dismissed"])


def _undismissed(conversation: Conversation, state: ConversationMetricState, event) -> None:
    if state.dismissed == 1:
        metric_event_emit(key=f"undismissed:{conversation.pk}:{state.cycle}:{event.pk}", kind="undismissed",
                          occurred_at=event.created_at, dims=conversation_dims(conversation, 0), cycle=state.cycle)
        state.dismissed = 0
        _cohort_dismissed(conversation, event, -1)
        state.save(update_fields=["dismissed"])
    elif state.dismissed == 2:
        state.dismissed, state.cycle_counted = 0, False
        state.save(update_fields=["dismissed", "cycle_counted"])
        _cycle_count(conversation, state)


def _resolved(conversation: Conversation, state: ConversationMetricState, at: dt.datetime, actor_id=None) -> None:
    if state.resolved or state.dismissed:
        return  # resolved -> closed, a repeated hook, or spam: one resolution per cycle, none for spam
    # The resolver: the agent assigned at the resolve, else whoever resolved it, else the last assignee.
    agent_id = conversation.assignee_id or actor_id or conversation.last_assignee_id or 0
    seconds, business = _durations(conversation, state.cycle_started_at, at)
    dims = conversation_dims(conversation, agent_id)
    metric_event_emit(key=f"resolved:{conversation.pk}:{state.cycle}", kind="resolved", occurred_at=at,
                      dims=dims, cycle=state.cycle, value=seconds, value_bh=business,
                      data={"tags": sorted(conversation.tags.values_list("name", flat=True))})
    state.resolved = True
    state.save(update_fields=["resolved"])
    _final_resolution(conversation, state, at, dims)
    if agent_id:
        handled = _handled(conversation, state, agent_id)
        metric_event_emit(key=f"handled_resolved:{conversation.pk}:{state.cycle}:{agent_id}", kind="handled_resolved",
                          occurred_at=handled.occurred_at, dims=event_dims(handled), cycle=state.cycle)
    if _due_in_cycle(conversation.resolution_due_at, state):
        _sla_outcome(conversation, state, target="resolution", met=at <= conversation.resolution_due_at, at=at,
                     agent_id=agent_id, due=conversation.resolution_due_at)


def event_dims(event: MetricEvent) -> dict:
    """The dimensions an event was counted under (a fact taken back or paired with it uses the same)."""
    return {f: getattr(event, f) for f in ("conversation_id", "channel", "account_id", "queue_id", "team_id",
                                           "agent_id", "customer_id")}


def _first_contact(conversation: Conversation, state: ConversationMetricState) -> dt.datetime:
    """The conversation's first customer contact: the start of its first cycle."""
    opened = MetricEvent.objects.filter(key=f"opened:{conversation.pk}:1").values_list("occurred_at", flat=True).first()
    if opened is not None:
        return opened
    if state.cycle == 1:
        return state.cycle_started_at
    first = (Message.objects.filter(conversation_id=conversation.pk, direction=Message.Direction.INBOUND)
             .order_by("sent_at", "id").values_list("sent_at", flat=True).first())
    return first or conversation.created_at


def _handled(conversation: Conversation, state: ConversationMetricState, agent_id: int) -> MetricEvent:
    """The agent handled this cycle (replied in it, resolved it, or was still assigned as it reopened): one
    "handled" per cycle and agent, counted at the cycle's start, so an agent's resolutions
    of the cycles they handled (handled_resolved, counted there too) never exceed them."""
    key = f"handled:{conversation.pk}:{state.cycle}:{agent_id}"
    return metric_event_emit(key=key, kind="handled", occurred_at=state.cycle_started_at,
                             dims=conversation_dims(conversation, agent_id), cycle=state.cycle) \
        or MetricEvent.objects.get(key=key)


def _final_resolution(conversation: Conversation, state: ConversationMetricState, at: dt.datetime,
                      dims: dict) -> None:
    """Full resolution time (first contact -> this resolve) and the cohort's resolution (counted at
    the conversation's first contact, with its "opened" dims): both taken back if it reopens
    (_final_resolution_undo), so only the final resolve stays."""
    seconds, business = _durations(conversation, _first_contact(conversation, state), at)
    metric_event_emit(key=f"resfull:{conversation.pk}:{state.cycle}", kind="resolution_full", occurred_at=at,
                      dims=dims, cycle=state.cycle, value=seconds, value_bh=business)
    opened = MetricEvent.objects.filter(key=f"opened:{conversation.pk}:1").first()
    if opened is not None:
        metric_event_emit(key=f"cohort:{conversation.pk}:{state.cycle}", kind="cohort_resolved",
                          occurred_at=opened.occurred_at, dims=event_dims(opened), cycle=state.cycle)


def _final_resolution_undo(conversation: Conversation, cycle: int) -> None:
    """The cycle's resolve was not the final one (the conversation reopened): its full
    resolution time and cohort resolution are taken back where they were counted."""
    for key in (f"resfull:{conversation.pk}:{cycle}", f"cohort:{conversation.pk}:{cycle}"):
        done = MetricEvent.objects.filter(key=key).first()
        if done is not None:
            metric_event_emit(key=f"undo:{key}", kind=done.kind, occurred_at=done.occurred_at, dims=event_dims(done),
                              cycle=cycle, value=done.value, value_bh=done.value_bh, data={"sign": -1})


def _cohort_dismissed(conversation: Conversation, event, sign: int) -> None:
    """Spam leaves the cohort of the period it opened in (sign 1); unmarking puts it back (-1)."""
    opened = MetricEvent.objects.filter(key=f"opened:{conversation.pk}:1").first()
    if opened is None:
        return
    net = sum(e.data.get("sign", 1) for e in MetricEvent.objects.filter(conversation_id=conversation.pk,
                                                                        kind="cohort_dismissed").only("data"))
    if net == (0 if sign > 0 else 1):
        metric_event_emit(key=f"cohort_dismissed:{conversation.pk}:{event.pk}", kind="cohort_dismissed",
                          occurred_at=opened.occurred_at, dims=event_dims(opened), cycle=opened.cycle,
                          data={"sign": sign})


def metrics_counts_kind(kind: str) -> bool:
    """Whether metrics_record_for_event does anything with an audit row of this kind."""
    return kind in AUDIT_KINDS and kind != "created"  # a new conversation is counted once routed


def metrics_record_for_audit_rows(*, rows) -> None:
    """The inbox's audit rows of one write (apps.inbox.signals.AuditRow): metric events for the
    kinds reports count, in their transaction. An event instance is built only for those."""
    db = router.db_for_write(ConversationEvent)
    for row in rows:
        if not metrics_counts_kind(row.kind):
            continue
        event = ConversationEvent(pk=row.id, conversation=row.conversation, kind=row.kind, data=row.data,
                                  created_at=row.created_at, actor_id=row.actor_id)
        event._state.adding, event._state.db = False, db
        metrics_record_for_event(event=event)


def metrics_record_for_event(*, event) -> None:
    """Derives metric events from one audit row (called by event_record). A bug
    here is logged, never allowed to fail the agent's action."""
    if not metrics_counts_kind(event.kind):
        return
    try:
        with transaction.atomic():
            _record_for_event(event)
        rollups_apply_after_commit()
    except Exception:  # noqa: BLE001 - metrics must not block the inbox
        log.exception("metric event for %s on #%s failed", event.kind, event.conversation_id)
        if getattr(settings, "REPORTS_METRICS_STRICT", False):
            raise


def _record_for_event(event) -> None:
    conversation = event.conversation
    at = event.created_at
    state = _state(conversation)
    data = event.data or {}
    if event.kind == "reopened":
        _cycle_start(conversation, state, conversation.cycle_started_at or at)
    elif event.kind == "status_changed":
        old, new = data.get("old"), data.get("new")
        if old == "resolved" and new == "open":
            _cycle_start(conversation, state, conversation.cycle_started_at or at)
        elif new == "closed" and conversation.is_spam and str(data.get("reason", "")).startswith("spam"):
            # a routing rule's spam: closed without a resolution (dismissed, should it be unmarked),
            # and out of every metric while it is spam (an agent's close of a spam conversation is
            # its resolution, counted if it is unmarked)
            _cycle_count(conversation, state)
            _dismissed(conversation, state, event)
            _spam_mark(conversation, event, spam=True)
        elif new == "closed" and "ignored" in str(data.get("reason", "")):
            _dismissed(conversation, state, event)  # a routing rule's ignore
        elif new == "resolved" or (new == "closed" and old != "resolved"):
            _cycle_count(conversation, state)
            _resolved(conversation, state, at, event.actor_id)
    elif event.kind == "reply_sent":
        _cycle_count(conversation, state)
        _reply_sent(conversation, state, data.get("message_id"), at)
    elif event.kind in ("marked_spam", "spam_marked"):
        _spam_mark(conversation, event, spam=True)
    elif event.kind == "unmarked_spam":
        if conversation.status != "closed":
            _undismissed(conversation, state, event)  # dismissed before spam left every metric (older events)
        _spam_mark(conversation, event, spam=False)
    elif event.kind == "sla_breached":
        # the SLA monitor's breach: credited to the agent assigned at that moment (0: unassigned),
        # counted at its due time
        _sla_outcome(conversation, state, target=str(data.get("target") or "sla"), met=False, at=at,
                     agent_id=conversation.assignee_id or 0, due=_parse_time(data.get("due_at")))


def _parse_time(value) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _spam_mark(conversation: Conversation, event, *, spam: bool) -> None:
    """The rollups leave the conversation out of every metric from a "spam" mark until an
    "unspam" one (spam_marks.spam_filter): its facts are recorded as for any conversation, so
    the order of a breach, a message read or a resolve and the mark does not matter."""
    kind = metrics.SPAM_MARKS[0] if spam else metrics.SPAM_MARKS[1]
    metric_event_emit(key=f"{kind}:{conversation.pk}:{event.pk}", kind=kind, occurred_at=event.created_at,
                      dims=conversation_dims(conversation))


def rollups_apply_after_commit() -> None:
    transaction.on_commit(rollups_apply_soon)


def rollups_apply_soon() -> None:
    """Many changes in a few seconds ask for one apply, not one each."""
    if cache.add("reports:apply-soon", 1, timeout=5):
        task_named("reports.apply_rollups").apply_async(countdown=5)

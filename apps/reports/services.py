"""Writes for reports: metric events, rollups, surveys, alerts, digests.

Metric events come from:
- `metrics_record_for_event`, called by the audit writer `inbox.events.event_record`
  in the transaction of every audit row (cycle starts, replies sent, resolutions,
  SLA breaches);
- `inbound_messages_record`, run by the `reports.apply_rollups` task: one "msg_in"
  per customer message once routing has run for it (id watermark), and
  the first cycle's "opened" with the queue routing chose;
- the survey services here (sent, answered).
Every event has a unique `key`, so a redelivered task or a repeated audit row
never counts a fact twice. Rollups are applied later by `reports.apply_rollups`.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import secrets
from collections import defaultdict

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, router, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.db import rows_insert
from apps.core.errors import Conflict, DomainError
from apps.core.sanitize import text_clean
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.inbox.services import reply_create
from apps.routing.calendar import WEEKDAYS, Calendar
from apps.routing.models import BusinessHours, Holiday, UnroutedMessage

from . import metrics, themes
from .metrics import CHANNEL_ACCOUNT, CHANNEL_ACCOUNT_METRICS, HOUR_SLICE_FILTERS, VALUE_METRICS, examples_merge
from .models import (ConversationFact, ConversationMetricState, CustomerFact, Grain, MetricEvent, MetricRollup,
                     MetricSlice, RollupLock, SliceGrain, SpikeAlert, Survey, TermRollup, WorkSession, new_cache_epoch)
from .realtime import alert_push

log = logging.getLogger(__name__)

AUDIT_KINDS = {"created", "reopened", "status_changed", "reply_sent", "sla_breached", "marked_spam", "spam_marked",
               "unmarked_spam"}
SURVEY_SALT = "reports.survey"
REPEAT_WINDOW = dt.timedelta(days=7)


# --- metric events ------------------------------------------------------------

def _dims(conversation: Conversation, agent_id: int | None = None) -> dict:
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


def _emit(*, key: str, kind: str, occurred_at: dt.datetime, dims: dict, cycle: int = 0, value=None,
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


def _cycle_count(conversation: Conversation, state: ConversationMetricState, dims: dict | None = None) -> None:
    """Writes the cycle's opened/reopened event once, and a repeat contact if the
    customer comes back within 7 days of a resolution."""
    if state.cycle_counted:
        return
    kind = "opened" if state.cycle == 1 else "reopened"
    dims = dims or _dims(conversation)
    _emit(key=f"{kind}:{conversation.pk}:{state.cycle}", kind=kind, occurred_at=state.cycle_started_at,
          dims=dims, cycle=state.cycle)
    state.cycle_counted = True
    state.save(update_fields=["cycle_counted"])
    _repeat_contact_check(customer_id=conversation.customer_id, at=state.cycle_started_at)


def _repeat_contact_check(*, customer_id: int, at: dt.datetime) -> None:
    resolution = (MetricEvent.objects.filter(customer_id=customer_id, kind="resolved",
                                             occurred_at__gte=at - REPEAT_WINDOW, occurred_at__lte=at)
                  .order_by("-occurred_at", "-id").first())
    if resolution is None:
        return
    # Counted in the resolution's hour, so rate = repeat contacts / resolutions of the same period.
    dims = {f: getattr(resolution, f) for f in ("conversation_id", "channel", "account_id", "queue_id", "team_id",
                                                "agent_id", "customer_id")}
    _emit(key=f"repeat:{resolution.pk}", kind="repeat_contact", occurred_at=resolution.occurred_at, dims=dims,
          cycle=resolution.cycle, value=(at - resolution.occurred_at).total_seconds())


def _cycle_start(conversation: Conversation, state: ConversationMetricState, started_at: dt.datetime) -> None:
    state.cycle += 1
    state.cycle_started_at = started_at
    state.cycle_counted = state.first_response_done = state.resolved = False
    state.dismissed = 0
    state.sla_decided = []
    state.save()
    _cycle_count(conversation, state)


def _due_in_cycle(due: dt.datetime | None, state: ConversationMetricState) -> bool:
    """A due time before the cycle started is a leftover of an earlier cycle."""
    return due is not None and due >= state.cycle_started_at


def _sla_outcome(conversation, state, *, target: str, met: bool, at: dt.datetime, agent_id=None) -> None:
    if target in state.sla_decided:
        return
    kind = "sla_met" if met else "sla_breached"
    _emit(key=f"sla:{conversation.pk}:{state.cycle}:{target}", kind=kind, occurred_at=at,
          dims=_dims(conversation, agent_id), cycle=state.cycle, data={"target": target})
    state.sla_decided = [*state.sla_decided, target]
    state.save(update_fields=["sla_decided"])


def _reply_sent(conversation: Conversation, state: ConversationMetricState, message_id: int, at: dt.datetime) -> None:
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return
    human = not message.is_bot and message.author_user_id is not None
    dims = _dims(conversation, message.author_user_id or 0)
    _emit(key=f"out:{message.pk}", kind="msg_out" if human else "msg_out_bot", occurred_at=at, dims=dims,
          cycle=state.cycle)
    if not human:
        return  # auto-replies and survey links are not a response
    if not state.first_response_done:
        seconds, business = _durations(conversation, state.cycle_started_at, at)
        _emit(key=f"frt:{conversation.pk}:{state.cycle}", kind="first_response", occurred_at=at, dims=dims,
              cycle=state.cycle, value=seconds, value_bh=business)
        state.first_response_done = True
        state.save(update_fields=["first_response_done"])
        if _due_in_cycle(conversation.first_response_due_at, state):
            _sla_outcome(conversation, state, target="first_response", met=at <= conversation.first_response_due_at,
                         at=at, agent_id=message.author_user_id)
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
        _emit(key=f"reply:{message.pk}", kind="reply", occurred_at=at, dims=dims, cycle=state.cycle, value=seconds,
              value_bh=business)


def _dismissed(conversation: Conversation, state: ConversationMetricState, event) -> None:
    """Spam or ignored: out of the backlog and the resolution rate, never a resolution."""
    if state.resolved or state.dismissed:
        return
    if not state.cycle_counted:
        state.cycle_counted, state.dismissed = True, 2  # never counted: nothing to take back
    else:
        _emit(key=f"dismissed:{conversation.pk}:{state.cycle}:{event.pk}", kind="dismissed",
              occurred_at=event.created_at, dims=_dims(conversation), cycle=state.cycle)
        state.dismissed = 1
    state.save(update_fields=["cycle_counted", "dismissed"])


def _undismissed(conversation: Conversation, state: ConversationMetricState, event) -> None:
    if state.dismissed == 1:
        _emit(key=f"undismissed:{conversation.pk}:{state.cycle}:{event.pk}", kind="undismissed",
              occurred_at=event.created_at, dims=_dims(conversation), cycle=state.cycle)
        state.dismissed = 0
        state.save(update_fields=["dismissed"])
    elif state.dismissed == 2:
        state.dismissed, state.cycle_counted = 0, False
        state.save(update_fields=["dismissed", "cycle_counted"])
        _cycle_count(conversation, state)


def _resolved(conversation: Conversation, state: ConversationMetricState, at: dt.datetime) -> None:
    if state.resolved or state.dismissed:
        return  # resolved -> closed, a repeated hook, or spam: one resolution per cycle, none for spam
    agent_id = conversation.assignee_id or conversation.last_assignee_id or 0
    seconds, business = _durations(conversation, state.cycle_started_at, at)
    _emit(key=f"resolved:{conversation.pk}:{state.cycle}", kind="resolved", occurred_at=at,
          dims=_dims(conversation, agent_id), cycle=state.cycle, value=seconds, value_bh=business,
          data={"tags": sorted(conversation.tags.values_list("name", flat=True))})
    state.resolved = True
    state.save(update_fields=["resolved"])
    if _due_in_cycle(conversation.resolution_due_at, state):
        _sla_outcome(conversation, state, target="resolution", met=at <= conversation.resolution_due_at, at=at,
                     agent_id=agent_id)


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
        _apply_soon()
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
        elif new == "closed" and (conversation.is_spam or "ignored" in str(data.get("reason", ""))):
            _dismissed(conversation, state, event)  # a routing rule's spam / ignore
        elif new == "resolved" or (new == "closed" and old != "resolved"):
            _cycle_count(conversation, state)
            _resolved(conversation, state, at)
    elif event.kind == "reply_sent":
        _cycle_count(conversation, state)
        _reply_sent(conversation, state, data.get("message_id"), at)
    elif event.kind in ("marked_spam", "spam_marked"):
        _dismissed(conversation, state, event)
    elif event.kind == "unmarked_spam":
        _undismissed(conversation, state, event)
    elif event.kind == "sla_breached":
        _sla_outcome(conversation, state, target=str(data.get("target") or "sla"), met=False, at=at)


# --- handle time (work sessions) -------------------------------------------------

HANDLE_OPEN, HANDLE_ACTIVE, HANDLE_LEAVE = "open", "active", "leave"


def _handle_conf() -> tuple[dt.timedelta, float]:
    conf = getattr(settings, "REPORTS_HANDLE_TIME", {})
    return dt.timedelta(seconds=conf.get("idle_seconds", 300)), float(conf.get("max_session_seconds", 4 * 3600))


def work_session_signal(*, conversation_id: int, agent_id: int, kind: str,
                        at: dt.datetime | None = None) -> WorkSession | None:
    """Records one presence signal of an agent on a conversation's thread:
    "open" (the thread opened), "active" (typing or other input) or "leave".
    Time between two signals counts when it is at most the idle limit
    (REPORTS_HANDLE_TIME idle_seconds, default 5 min) and the agent had not left;
    a longer gap closes the session at its last activity, and the next signal
    starts a new one."""
    at = at or timezone.now()
    idle, cap = _handle_conf()
    with transaction.atomic():
        session = (WorkSession.objects.select_for_update()
                   .filter(agent_id=agent_id, conversation_id=conversation_id, ended_at__isnull=True).first())
        if session is not None and at - session.last_active_at > idle:
            _work_session_close(session)
            session = None
        if session is None:
            if kind == HANDLE_LEAVE:
                return None
            try:
                with transaction.atomic():  # two signals racing: the other one created it
                    return WorkSession.objects.create(conversation_id=conversation_id, agent_id=agent_id,
                                                      started_at=at, last_active_at=at)
            except IntegrityError:
                return None
        if at > session.last_active_at:
            if not session.away:
                session.active_seconds = min(cap, session.active_seconds
                                             + (at - session.last_active_at).total_seconds())
            session.last_active_at = at
        session.away = kind == HANDLE_LEAVE
        session.save(update_fields=["active_seconds", "last_active_at", "away"])
    return session


def work_sessions_close_idle(*, now: dt.datetime | None = None) -> int:
    """Closes sessions with no signal for longer than the idle limit (the agent
    left, closed the tab or went idle), each at its last activity. Run by the
    reports task before it applies rollups."""
    idle, _ = _handle_conf()
    now = now or timezone.now()
    closed = 0
    with transaction.atomic():
        for session in (WorkSession.objects.select_for_update(skip_locked=True)
                        .filter(ended_at__isnull=True, last_active_at__lt=now - idle).order_by("id")[:1000]):
            _work_session_close(session)
            closed += 1
    return closed


def _work_session_close(session: WorkSession) -> None:
    session.ended_at = session.last_active_at
    session.save(update_fields=["ended_at"])
    if session.active_seconds <= 0:
        return  # opened and never worked on: no handle time to count
    conversation = (Conversation.objects.select_related("queue", "channel_account")
                    .filter(pk=session.conversation_id).first())
    if conversation is None:
        return
    # Counted when the work ended, for the agent who did it (not the assignee).
    _emit(key=f"handle:{session.pk}", kind="handle", occurred_at=session.ended_at,
          dims=_dims(conversation, session.agent_id), value=session.active_seconds)
    _apply_soon()


def _msg_in_data(message: Message) -> dict:
    text = message.text or ""
    return {"label": metrics.sentiment_label(message.sentiment), "topics": themes.topics_of(text),
            "hashtags": themes.hashtags_of(text), "keywords": themes.keywords_of(text),
            "churn": themes.churn_words_in(text), "excerpt": themes.mask(text), "message_id": message.pk}


def msg_in_record(*, message: Message, dims: dict, cycle: int = 0) -> MetricEvent | None:
    return _emit(key=f"in:{message.pk}", kind="msg_in", occurred_at=message.sent_at, dims=dims, cycle=cycle,
                 value=message.sentiment, data=_msg_in_data(message))


def inbound_messages_record(*, now: dt.datetime | None = None, limit: int = 5000,
                            rescan: dt.timedelta = dt.timedelta(minutes=10),
                            unscored_after: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """One msg_in event per inbound message, taken from Message rows by id
    watermark once routing has run for them (no routing.UnroutedMessage row left;
    ingest stores the sentiment with the message, but the queue and team are
    routing's), so reports need no hook inside routing. The last 10 minutes are
    re-read on every run: a row committed late under a lower id is still counted,
    and the unique event key makes the re-read free of double counts. A message
    routing never takes is counted as it is after 10 minutes. Also counts the
    conversation's first cycle ("opened") with the queue routing gave it."""
    now = now or timezone.now()
    lock, _ = RollupLock.objects.get_or_create(pk=1)
    candidates = list(
        Message.objects.filter(direction=Message.Direction.INBOUND)
        .filter(Q(pk__gt=lock.message_watermark) | Q(created_at__gte=now - rescan))
        .select_related("conversation__queue", "conversation__channel_account")
        # the account's encrypted secrets are not needed: decrypting them per message cost more than counting it
        .defer("conversation__channel_account__credentials", "conversation__channel_account__hook_secrets",
               "raw").order_by("id")[:limit])
    seen = set(MetricEvent.objects.filter(key__in=[f"in:{m.pk}" for m in candidates]).values_list("key", flat=True))
    unrouted = set(UnroutedMessage.objects.filter(pk__in=[m.pk for m in candidates]).values_list("pk", flat=True))
    watermark, waiting_from, recorded = lock.message_watermark, None, 0
    todo: dict[int, list[Message]] = {}
    for message in candidates:
        if message.pk in unrouted and message.created_at > now - unscored_after:
            waiting_from = waiting_from or message.pk  # not routed yet: next run
            continue
        if f"in:{message.pk}" not in seen and not message.conversation.is_spam:
            todo.setdefault(message.conversation_id, []).append(message)
        if waiting_from is None:
            watermark = max(watermark, message.pk)
    groups = list(todo.values())
    for start in range(0, len(groups), 200):
        recorded += _messages_in_record(groups[start:start + 200])
    RollupLock.objects.filter(pk=1, message_watermark__lt=watermark).update(message_watermark=watermark)
    return recorded


def _messages_in_record(groups: list[list[Message]]) -> int:
    """msg_in for the messages of some conversations ([[message, ...] per
    conversation]) in one transaction: their metric states locked in one
    statement (created where missing), each conversation's cycle counted as
    _cycle_count does, the events inserted in one statement (one per message and
    per 6 queries before, issue 8). Returns how many were recorded."""
    conversations = {group[0].conversation_id: group[0].conversation for group in groups}
    ids = sorted(conversations)

    def locked() -> dict[int, ConversationMetricState]:
        return {s.conversation_id: s for s in ConversationMetricState.objects.select_for_update()
                .filter(conversation_id__in=ids).order_by("conversation_id")}

    with transaction.atomic():
        states = locked()
        missing = [i for i in ids if i not in states]
        if missing:
            now = timezone.now()
            ConversationMetricState.objects.bulk_create([
                ConversationMetricState(conversation_id=i, cycle=1, cycle_started_at=(
                    conversations[i].cycle_started_at or conversations[i].created_at or now)) for i in missing
            ], ignore_conflicts=True)  # created meanwhile by an audit event's hook: theirs stands
            states = locked()
        events = []
        for group in groups:
            conversation = group[0].conversation
            state = states[conversation.pk]
            dims = _dims(conversation)
            _cycle_count(conversation, state, dims)
            events += [MetricEvent(key=f"in:{m.pk}", kind="msg_in", occurred_at=m.sent_at, cycle=state.cycle,
                                   value=m.sentiment, data=_msg_in_data(m), **dims) for m in group]
        # a key counted meanwhile (a second applier) is skipped, as _emit skips it
        return len(rows_insert(events, ignore_conflicts=True))


def _apply_soon() -> None:
    from .tasks import rollups_apply_soon

    transaction.on_commit(rollups_apply_soon)


# --- rollups ------------------------------------------------------------------



def _increments(event: MetricEvent) -> list[tuple[str, float | None]]:
    kind, value = event.kind, event.value
    if kind == "undismissed":
        return [("dismissed", None, -1)]
    out: list = [(kind, value if kind in VALUE_METRICS or kind == "repeat_contact" else None)]
    if kind == "msg_in" and value is not None:
        out += [("sentiment", value), (f"msg_in_{metrics.sentiment_label(value)}", None)]
    if kind in ("first_response", "reply", "resolved") and event.value_bh is not None:
        out.append((f"{kind}_bh", event.value_bh))
    if kind in ("sla_met", "sla_breached"):
        out.append((f"{kind}:{event.data.get('target', 'sla')}", None))
    return [(m, v, 1) for m, v in out]




def _sort_key(event: MetricEvent) -> str:
    return f"{event.occurred_at.astimezone(dt.timezone.utc):%Y%m%d%H%M%S%f}|{event.pk:012d}"


def _apply_metric_rows(events: list[MetricEvent]) -> None:
    acc: dict[tuple, list] = {}
    for e in events:
        for grain, bucket in ((Grain.HOUR, metrics.floor_hour(e.occurred_at)),
                              (Grain.DAY, metrics.floor_day(e.occurred_at))):
            for metric, value, delta in _increments(e):
                key = (grain, bucket, metric, e.channel, e.account_id, e.queue_id, e.team_id, e.agent_id)
                row = acc.setdefault(key, [0, 0.0, []])
                row[0] += delta
                if value is not None:
                    row[1] += value
                    if metric in VALUE_METRICS:
                        row[2].append(value)
    if not acc:
        return
    existing = {
        (r.grain, r.bucket, r.metric, r.channel, r.account_id, r.queue_id, r.team_id, r.agent_id): r
        for r in MetricRollup.objects.filter(bucket__in={k[1] for k in acc}, metric__in={k[2] for k in acc})
    }
    new, changed = [], []
    for key, (count, total, values) in acc.items():
        row = existing.get(key)
        if row is None:
            row = MetricRollup(grain=key[0], bucket=key[1], metric=key[2], channel=key[3], account_id=key[4],
                               queue_id=key[5], team_id=key[6], agent_id=key[7])
            new.append(row)
        else:
            changed.append(row)
        row.count += count
        row.total += total
        if values:
            row.values = sorted([*row.values, *values])
    MetricRollup.objects.bulk_create(new, batch_size=500)
    MetricRollup.objects.bulk_update(changed, ["count", "total", "values"], batch_size=500)
    _apply_slices(acc)


SLICE_DIMS = (("channel", 3), ("account", 4), ("queue", 5), ("team", 6), ("agent", 7))





def channel_account_key(channel: str, account_id) -> str:
    return f"{channel}|{account_id}"


def _slice_keys(key: tuple):
    """The slice rows a day rollup row adds to, as (grain, fdim, fkey, dim, key): unfiltered,
    by day and week, along each dimension; filtered by each dimension's value (the filter
    slices), by day and week in total and by week along each other dimension."""
    cells = [(dim, str(key[index])) for dim, index in SLICE_DIMS]
    for grain in (SliceGrain.DAY, SliceGrain.WEEK):
        yield grain, "", "", "", ""
        for dim, value in cells:
            yield grain, "", "", dim, value
            yield grain, dim, value, "", ""
    for fdim, fkey in cells:
        for dim, value in cells:
            if dim != fdim:
                yield SliceGrain.WEEK, fdim, fkey, dim, value


def _apply_slices(acc: dict) -> None:
    """Adds the day increments to the slices (MetricSlice): one dimension at a time, day and
    week, and the filter slices (see _slice_keys); the hour increments to the hour slices."""
    slices: dict[tuple, list] = {}
    for key, (count, total, values) in acc.items():
        if key[0] == Grain.HOUR:
            cells = dict((dim, str(key[index])) for dim, index in SLICE_DIMS)
            views = [("", "")]
            if key[2] in CHANNEL_ACCOUNT_METRICS:
                views.append((CHANNEL_ACCOUNT, channel_account_key(key[3], key[4])))
            for fdim in HOUR_SLICE_FILTERS:
                for dim, value in views:
                    row = slices.setdefault((SliceGrain.HOUR, key[1], key[2], fdim, cells.get(fdim, ""), dim, value),
                                            [0, 0.0, []])
                    row[0] += count
                    row[1] += total
                    row[2].extend(values)
            continue
        week = metrics.floor_week(key[1])
        for grain, fdim, fkey, dim, value in _slice_keys(key):
            skey = (grain, key[1] if grain == SliceGrain.DAY else week, key[2], fdim, fkey, dim, value)
            row = slices.setdefault(skey, [0, 0.0, []])
            row[0] += count
            row[1] += total
            row[2].extend(values)
    if not slices:
        return
    buckets = Q(pk__in=[])
    for grain in SliceGrain:
        buckets |= Q(grain=grain, bucket__in={k[1] for k in slices if k[0] == grain})
    existing = {(r.grain, r.bucket, r.metric, r.fdim, r.fkey, r.dim, r.key): r for r in MetricSlice.objects.filter(
        buckets, metric__in={k[2] for k in slices})}
    new, changed = [], []
    for skey, (count, total, values) in slices.items():
        row = existing.get(skey)
        if row is None:
            row = MetricSlice(grain=skey[0], bucket=skey[1], metric=skey[2], fdim=skey[3], fkey=skey[4], dim=skey[5],
                              key=skey[6])
            new.append(row)
        else:
            changed.append(row)
        row.count += count
        row.total += total
        if values:
            hist = dict(row.hist)
            for v in values:
                b = str(metrics.hist_bin(v))
                hist[b] = hist.get(b, 0) + 1
            row.hist = hist
            # exact values only while small: beyond that the histogram answers
            row.values = sorted([*row.values, *values]) if row.count <= metrics.EXACT_MAX else []
    MetricSlice.objects.bulk_create(new, batch_size=500)
    MetricSlice.objects.bulk_update(changed, ["count", "total", "values", "hist"], batch_size=500)


def _apply_term_rows(events: list[MetricEvent]) -> None:
    acc: dict[tuple, dict] = {}
    for e in events:
        if e.kind != "msg_in":
            continue
        label = metrics.sentiment_label(e.value)
        terms = [("topic", t) for t in e.data.get("topics", [])] + [("hashtag", t) for t in e.data.get("hashtags", [])]
        terms += [("keyword", t) for t in e.data.get("keywords", [])]
        buckets = ((Grain.HOUR, metrics.floor_hour(e.occurred_at)), (Grain.DAY, metrics.floor_day(e.occurred_at)))
        for (term_type, term), (grain, bucket) in itertools.product(terms, buckets):
            key = (grain, bucket, e.channel, e.account_id, term_type, term[:64])
            row = acc.setdefault(key, {"count": 0, "positive": 0, "negative": 0, "neutral": 0, "total": 0.0,
                                       "examples": []})
            row["count"] += 1
            if label in ("positive", "negative", "neutral"):
                row[label] += 1
                row["total"] += e.value
                if label != "neutral":
                    row["examples"] = examples_merge(row["examples"], [{
                        "message_id": e.data.get("message_id", e.pk), "conversation_id": e.conversation_id,
                        "sentiment": e.value, "text": e.data.get("excerpt", "")}])
    if not acc:
        return
    existing = {(r.grain, r.bucket, r.channel, r.account_id, r.term_type, r.term): r
                for r in TermRollup.objects.filter(bucket__in={k[1] for k in acc}, term__in={k[5] for k in acc})}
    new, changed = [], []
    for key, inc in acc.items():
        row = existing.get(key)
        if row is None:
            row = TermRollup(grain=key[0], bucket=key[1], channel=key[2], account_id=key[3], term_type=key[4],
                             term=key[5])
            new.append(row)
        else:
            changed.append(row)
        for f in ("count", "positive", "negative", "neutral", "total"):
            setattr(row, f, getattr(row, f) + inc[f])
        row.examples = examples_merge(row.examples, inc["examples"])
    TermRollup.objects.bulk_create(new, batch_size=500)
    TermRollup.objects.bulk_update(changed, ["count", "positive", "negative", "neutral", "total", "examples"],
                                   batch_size=500)


def _apply_facts(events: list[MetricEvent]) -> None:
    """Folds events into per-conversation and per-customer facts. Every update
    is a sum, min, max or union, so the order events arrive in does not matter."""
    conv_ids = {e.conversation_id for e in events if e.conversation_id}
    facts = {f.conversation_id: f for f in ConversationFact.objects.filter(conversation_id__in=conv_ids)}
    cust_ids = {e.customer_id for e in events if e.kind == "msg_in" and e.customer_id}
    customers = {c.customer_id: c for c in CustomerFact.objects.filter(customer_id__in=cust_ids)}
    new_facts, new_customers = {}, {}
    for e in events:
        if not e.conversation_id:
            continue
        fact = facts.get(e.conversation_id)
        if fact is None:
            fact = facts[e.conversation_id] = new_facts[e.conversation_id] = ConversationFact(
                conversation_id=e.conversation_id, channel=e.channel, account_id=e.account_id,
                queue_id=e.queue_id, team_id=e.team_id, agent_id=e.agent_id, customer_id=e.customer_id)
        key = _sort_key(e)
        if e.kind in ("opened", "reopened"):
            if e.kind == "reopened":
                fact.reopens += 1
            if fact.opened_at is None or e.occurred_at < fact.opened_at:
                fact.opened_at = e.occurred_at
        elif e.kind == "resolved":
            fact.resolutions += 1
            if key > fact.dims_key:
                fact.dims_key = key
                fact.last_resolved_at = e.occurred_at
                fact.queue_id, fact.team_id, fact.agent_id = e.queue_id, e.team_id, e.agent_id
                fact.tags = e.data.get("tags", [])
        elif e.kind == "first_response" and e.cycle >= fact.first_response_cycle:
            fact.first_response_cycle, fact.first_response_seconds = e.cycle, e.value
        elif e.kind == "sla_met":
            fact.sla_met += 1
        elif e.kind == "sla_breached":
            fact.sla_breached += 1
        elif e.kind == "csat" and key > fact.csat_key:
            fact.csat_key, fact.csat = key, int(e.value)
        elif e.kind == "msg_in":
            fact.inbound += 1
            fact.topics = sorted(set(fact.topics) | set(e.data.get("topics", [])))
            if e.value is not None:
                if not fact.first_sentiment_key or key < fact.first_sentiment_key:
                    fact.first_sentiment_key, fact.first_sentiment = key, e.value
                if key > fact.last_sentiment_key:
                    fact.last_sentiment_key, fact.last_sentiment = key, e.value
            cust = customers.get(e.customer_id)
            if cust is None:
                cust = customers[e.customer_id] = new_customers[e.customer_id] = CustomerFact(
                    customer_id=e.customer_id)
            cust.inbound += 1
            if e.value is not None:
                cust.recent = sorted([*cust.recent, [key, e.value]])[-10:]
            if e.data.get("churn"):
                cust.churn_hits += 1
                cust.churn_words = sorted(set(cust.churn_words) | set(e.data["churn"]))
            if cust.last_contact_at is None or e.occurred_at >= cust.last_contact_at:
                if cust.last_contact_at is None or e.occurred_at > cust.last_contact_at \
                        or e.conversation_id > cust.last_conversation_id:
                    cust.last_conversation_id = e.conversation_id
                cust.last_contact_at = e.occurred_at
                cust.channel = e.channel
    ConversationFact.objects.bulk_create(new_facts.values(), batch_size=500)
    fields = [f.name for f in ConversationFact._meta.fields if not f.primary_key]
    ConversationFact.objects.bulk_update([f for k, f in facts.items() if k not in new_facts], fields, batch_size=500)
    CustomerFact.objects.bulk_create(new_customers.values(), batch_size=500)
    cfields = [f.name for f in CustomerFact._meta.fields if not f.primary_key]
    CustomerFact.objects.bulk_update([c for k, c in customers.items() if k not in new_customers], cfields,
                                     batch_size=500)


def rollups_apply(*, batch_size: int = 2000, max_batches: int = 50) -> int:
    """Applies pending metric events to the rollups and facts, oldest first.
    One applier at a time (a locked row); each batch commits with its events
    marked, so a crash re-applies nothing and loses nothing."""
    RollupLock.objects.get_or_create(pk=1)
    applied = 0
    for _ in range(max_batches):
        with transaction.atomic():
            lock = RollupLock.objects.select_for_update().get(pk=1)
            events = list(MetricEvent.objects.filter(rolled_up=False).order_by("id")[:batch_size])
            if not events:
                break
            _apply_metric_rows(events)
            _apply_term_rows(events)
            _apply_facts(events)
            MetricEvent.objects.filter(pk__in=[e.pk for e in events]).update(rolled_up=True)
            lock.applied_total += len(events)
            lock.last_run_at = timezone.now()
            lock.save()
            applied += len(events)
    return applied


def rollups_rebuild() -> int:
    """Drops every rollup and fact and re-applies all metric events."""
    with transaction.atomic():
        RollupLock.objects.get_or_create(pk=1)
        RollupLock.objects.select_for_update().get(pk=1)
        # cached reports (apps/reports/cache.py) of the data before the rebuild never match again
        RollupLock.objects.filter(pk=1).update(cache_epoch=new_cache_epoch())
        MetricRollup.objects.all().delete()
        MetricSlice.objects.all().delete()
        TermRollup.objects.all().delete()
        ConversationFact.objects.all().delete()
        CustomerFact.objects.all().delete()
        MetricEvent.objects.update(rolled_up=False)
    total = 0
    while True:
        n = rollups_apply(max_batches=1000)
        total += n
        if n == 0:
            return total


# --- spike alerts ---------------------------------------------------------------

def spikes_detect(*, now: dt.datetime | None = None) -> list[SpikeAlert]:
    """Compares the latest hour's inbound volume and negative share per channel
    and account with the 24 hours before it; a jump raises one alert, pushed to
    supervisors and marketing."""
    now = now or timezone.now()
    hour = metrics.floor_hour(now)
    since = hour - dt.timedelta(hours=24)
    conf = getattr(settings, "REPORTS_SPIKE", {})
    rows = MetricRollup.objects.filter(grain=Grain.HOUR, bucket__gte=since, bucket__lte=hour,
                                       metric__in=["msg_in", "msg_in_negative", "sentiment"]).values_list(
        "bucket", "channel", "account_id", "metric", "count")
    series: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for bucket, channel, account_id, metric, count in rows:
        series[(channel, account_id)][bucket][metric] += count
    raised = []
    for (channel, account_id), by_hour in series.items():
        current = by_hour.get(hour, {})
        history = [by_hour.get(since + dt.timedelta(hours=i), {}) for i in range(24)]
        spiked, baseline = metrics.spike_check(
            current.get("msg_in", 0), [h.get("msg_in", 0) for h in history],
            factor=conf.get("volume_factor", 3.0), min_value=conf.get("min_volume", 10))
        if spiked:
            raised.append(_alert(SpikeAlert.Kind.VOLUME, channel, account_id, hour, current.get("msg_in", 0), baseline,
                                 f"{channel}: {current.get('msg_in', 0)} inbound messages this hour, "
                                 f"against {baseline:.1f} an hour over the day before"))
        jumped, share, base_share = metrics.negative_jump(
            current.get("msg_in_negative", 0), current.get("sentiment", 0),
            sum(h.get("msg_in_negative", 0) for h in history), sum(h.get("sentiment", 0) for h in history),
            points=conf.get("negative_points", 25.0), min_scored=conf.get("min_scored", 8))
        if jumped:
            raised.append(_alert(SpikeAlert.Kind.NEGATIVE, channel, account_id, hour, share, base_share,
                                 f"{channel}: {share:.0f}% negative this hour, against {base_share:.0f}% "
                                 f"over the day before"))
    return [a for a in raised if a is not None]


def _alert(kind, channel, account_id, hour, value, baseline, message) -> SpikeAlert | None:
    with transaction.atomic():
        alert, created = SpikeAlert.objects.get_or_create(
            kind=kind, channel=channel, account_id=account_id, bucket=hour,
            defaults={"value": value, "baseline": baseline, "message": message[:300]})
        if not created:
            return None
        transaction.on_commit(lambda: _alert_push(alert))
    return alert


def _alert_push(alert: SpikeAlert) -> None:
    alert_push(alert)
    _alert_mail(alert)


def _alert_mail(alert: SpikeAlert) -> None:
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    recipients = list(get_user_model().objects.filter(
        is_active=True, role__in=[Role.SUPERVISOR, Role.MARKETING]).exclude(email="").values_list("email", flat=True))
    if recipients:
        send_mail(f"[cxinbox] {alert.get_kind_display()}: {alert.channel}", alert.message + "\n",
                  None, recipients, fail_silently=True)


# --- surveys --------------------------------------------------------------------

SURVEY_TEXT = {
    "csat": "How did we do? Rate this conversation from 1 to 5: {url}",
    "ces": "How easy was it to get help? Tell us (1-7): {url}",
    "nps": "How likely are you to recommend us (0-10)? {url}",
}


def survey_url(survey: Survey) -> str:
    signed = signing.dumps(survey.token, salt=SURVEY_SALT, compress=False)
    base = getattr(settings, "SITE_URL", "http://localhost:8000").rstrip("/")
    return base + reverse("survey", kwargs={"token": signed})


def survey_from_signed(signed: str) -> Survey:
    max_age = getattr(settings, "REPORTS_SURVEY_MAX_AGE_DAYS", 30) * 86400
    try:
        token = signing.loads(signed, salt=SURVEY_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise DomainError("This survey link has expired.") from None
    except signing.BadSignature:
        raise Survey.DoesNotExist from None
    return Survey.objects.select_related("conversation").get(token=token)


def survey_send(*, conversation: Conversation, actor, kind: str = "csat") -> Survey:
    """Creates a survey and posts its link in the conversation's channel as an
    automatic (bot) message, so it never counts as a response."""
    if kind not in Survey.SCALES:
        raise DomainError(f"Unknown survey kind {kind!r}.")

    with transaction.atomic():
        now = timezone.now()
        survey = Survey.objects.create(kind=kind, conversation=conversation, token=secrets.token_urlsafe(16),
                                       sent_by=actor if getattr(actor, "pk", None) else None, sent_at=now)
        private = not conversation.is_public
        message = reply_create(conversation=conversation, agent=actor, text=SURVEY_TEXT[kind].format(
            url=survey_url(survey)), private=private, is_bot=True)
        survey.message_id = message.pk
        survey.save(update_fields=["message_id"])
        conversation = Conversation.objects.select_related("queue", "channel_account").get(pk=conversation.pk)
        _emit(key=f"survey_sent:{survey.pk}", kind=f"{kind}_sent", occurred_at=now, dims=_dims(conversation),
              data={"survey_id": survey.pk})
        from apps.inbox.events import event_record

        event_record(conversation=conversation, kind="survey_sent", actor=actor if getattr(actor, "pk", None) else None,
                     survey=kind, survey_id=survey.pk)
    return survey


def survey_answer(*, survey: Survey, score, comment: str = "") -> Survey:
    """Records the one answer a survey takes."""
    low, high = Survey.SCALES[survey.kind]
    try:
        score = int(score)
    except (TypeError, ValueError):
        raise DomainError(f"Pick a score from {low} to {high}.") from None
    if not low <= score <= high:
        raise DomainError(f"Pick a score from {low} to {high}.")
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if survey.answered_at is not None:
            # A double-click's second request: the same thanks, nothing counted twice.
            raise Conflict("This survey was already answered. Thank you!")
        now = timezone.now()
        # A stranger's text: NUL / lone surrogates -> U+FFFD (PostgreSQL stores neither).
        survey.score, survey.answered_at = score, now
        survey.comment = text_clean((comment or "").strip()[:2000])
        survey.save(update_fields=["score", "comment", "answered_at"])
        conversation = Conversation.objects.select_related("queue", "channel_account").get(pk=survey.conversation_id)
        dims = _dims(conversation)
        _emit(key=f"survey:{survey.pk}", kind=survey.kind, occurred_at=now, dims=dims, value=score,
              data={"survey_id": survey.pk})
        # Response rate counts answers in the hour the survey was sent.
        _emit(key=f"survey_answered:{survey.pk}", kind=f"{survey.kind}_answered", occurred_at=survey.sent_at,
              dims=dims, data={"survey_id": survey.pk})
        from apps.inbox.events import event_record

        event_record(conversation=conversation, kind="survey_answered", survey=survey.kind, score=score)
    _apply_soon()
    return survey

"""Customer messages counted for the reports: one "msg_in" event per inbound message (its
sentiment, topics, hashtags, keywords, churn words and a masked excerpt), and the first cycle's
"opened" with the queue routing gave the conversation. Read from Message rows by id watermark
once routing has run for them, by the `reports.apply_rollups` task, so the reports need no hook
inside ingest or routing."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import transaction
from django.db.models import Exists, Q
from django.utils import timezone

from apps.core.db import rows_insert
from apps.inbox.models import Message
from apps.routing.models import UnroutedMessage

from . import metrics, themes
from .models import ConversationMetricState, MetricEvent, RollupLock
from .services import conversation_dims, cycle_event


def _msg_in_data(message: Message) -> dict:
    text = message.text or ""
    return {"label": metrics.sentiment_label(message.sentiment), "topics": themes.topics_of(text),
            "hashtags": themes.hashtags_of(text), "keywords": themes.keywords_of(text),
            "churn": themes.churn_words_in(text), "excerpt": themes.mask(text), "message_id": message.pk}


# The fields counting reads: _msg_in_data, services.conversation_dims, a new metric state's cycle
# start. Another would be fetched one query per message (tests/reports/test_inbound.py counts them).
MESSAGE_FIELDS = (
    "id", "conversation_id", "created_at", "sent_at", "sentiment", "text",
    "conversation__id", "conversation__queue_id", "conversation__channel_account_id", "conversation__assignee_id",
    "conversation__customer_id", "conversation__cycle_started_at", "conversation__created_at",
    "conversation__queue__id", "conversation__queue__team_id",
    "conversation__channel_account__id", "conversation__channel_account__provider",
)

# Customer messages counted by one run of the applier; a run that takes this many queues the next
# at once (reports.apply_rollups), so a busy inbox is counted at the worker's pace, not 5,000 a minute.
INBOUND_BATCH = 5000
INBOUND_CONVERSATIONS_A_TRANSACTION = 200


def inbound_messages_record(*, now: dt.datetime | None = None, limit: int = INBOUND_BATCH,
                            rescan: dt.timedelta = dt.timedelta(minutes=10),
                            unscored_after: dt.timedelta = dt.timedelta(minutes=10),
                            pause: Callable[[], bool] | None = None) -> int:
    """One msg_in event per inbound message, taken from Message rows by id
    watermark once routing has run for them (no routing.UnroutedMessage row left;
    ingest stores the sentiment with the message, but the queue and team are
    routing's), so reports need no hook inside routing. The last 10 minutes are
    re-read on every run: a row committed late under a lower id is still counted,
    and the unique event key makes the re-read free of double counts. A message
    routing never takes is counted as it is after 10 minutes. Also counts the
    conversation's first cycle ("opened") with the queue routing gave it. `pause`, asked
    between transactions: True stops the run there (apps/reports/pacing.py), the watermark
    left where it was (the next run reads the rest again; what was counted is left out).
    Returns how many were recorded."""
    now = now or timezone.now()
    lock, _ = RollupLock.objects.get_or_create(pk=1)
    # Counted messages are left out in the query, before the limit: taken after it, the
    # window's first `limit` messages (all counted already) filled every run, and above
    # ~8 messages a second (5,000 in 10 minutes) no new message was counted until it was
    # among the window's oldest, ~10 minutes late (seen at 500/s: 5,000 of 46,000 counted).
    candidates = list(
        Message.objects.filter(direction=Message.Direction.INBOUND)
        .filter(Q(pk__gt=lock.message_watermark) | Q(created_at__gte=now - rescan))
        .filter(~Exists(MetricEvent.msg_in_of_outer_message()))
        .select_related("conversation__queue", "conversation__channel_account")
        # What counting reads and nothing else (MESSAGE_FIELDS): the four whole rows of each message
        # (every timestamp parsed, the account's encrypted secrets decrypted) were most of a run's CPU.
        .only(*MESSAGE_FIELDS).order_by("id")[:limit])
    unrouted = set(UnroutedMessage.objects.filter(pk__in=[m.pk for m in candidates]).values_list("pk", flat=True))
    watermark, waiting_from, recorded = lock.message_watermark, None, 0
    todo: dict[int, list[Message]] = {}
    for message in candidates:
        if message.pk in unrouted and message.created_at > now - unscored_after:
            waiting_from = waiting_from or message.pk  # not routed yet: next run
            continue
        todo.setdefault(message.conversation_id, []).append(message)  # spam too: the rollups leave it out
        if waiting_from is None:
            watermark = max(watermark, message.pk)
    groups = list(todo.values())
    for start in range(0, len(groups), INBOUND_CONVERSATIONS_A_TRANSACTION):
        if start and pause is not None and pause():
            return recorded
        recorded += _messages_in_record(groups[start:start + INBOUND_CONVERSATIONS_A_TRANSACTION])
    RollupLock.objects.filter(pk=1, message_watermark__lt=watermark).update(message_watermark=watermark)
    return recorded


def _messages_in_record(groups: list[list[Message]]) -> int:
    """msg_in for the messages of some conversations ([[message, ...] per
    conversation]) in one transaction: their metric states locked in one
    statement (created where missing), the cycles not counted yet counted as
    _cycle_count does, the events inserted in one statement (one per message and
    per 6 queries before, issue 8). Returns how many were recorded."""
    conversations = {group[0].conversation_id: group[0].conversation for group in groups}
    ids = sorted(conversations)

    def locked(some: list[int]) -> dict[int, ConversationMetricState]:
        return {s.conversation_id: s for s in ConversationMetricState.objects.select_for_update()
                .filter(conversation_id__in=some).order_by("conversation_id")}

    with transaction.atomic():
        states = locked(ids)
        missing = [i for i in ids if i not in states]
        if missing:
            now = timezone.now()
            rows_insert([
                ConversationMetricState(conversation_id=i, cycle=1, cycle_started_at=(
                    conversations[i].cycle_started_at or conversations[i].created_at or now)) for i in missing
            ], ignore_conflicts=True)  # created meanwhile by an audit event's hook: theirs stands
            states.update(locked(missing))
        cycles, events = [], []
        for group in groups:
            conversation = group[0].conversation
            state = states[conversation.pk]
            dims = conversation_dims(conversation)
            if not state.cycle_counted:  # _cycle_count, for the whole batch in two statements below
                cycles.append(cycle_event(conversation.pk, state, dims))
            events += [MetricEvent(key=f"in:{m.pk}", kind="msg_in", occurred_at=m.sent_at, cycle=state.cycle,
                                   value=m.sentiment, data=_msg_in_data(m), **dims) for m in group]
        # A key counted meanwhile (a retry, a second applier) is skipped, as metric_event_emit skips it.
        # One by one these were ~4 queries a new conversation: 5,000 messages took 7 s of a worker.
        rows_insert(cycles, ignore_conflicts=True)
        ConversationMetricState.objects.filter(
            conversation_id__in=[s.conversation_id for s in states.values() if not s.cycle_counted]
        ).update(cycle_counted=True)
        return len(rows_insert(events, ignore_conflicts=True))

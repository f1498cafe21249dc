"""The audit trail writer: every state change a service makes records one event."""
from apps.core.db import rows_insert_values

from .models import Conversation, ConversationEvent


def event_record(*, conversation: Conversation, kind: str, actor=None, **data) -> ConversationEvent:
    event = ConversationEvent.objects.create(conversation=conversation, kind=kind, actor=actor, data=data)
    # Reports derive their metric events from the audit trail, in the same transaction.
    from apps.reports.services import metrics_record_for_event

    metrics_record_for_event(event=event)
    return event


def events_record_many(*, events: list[tuple[Conversation, str, dict]]) -> list[int]:
    """event_record for a batch (ingest, routing): one INSERT for all rows, then
    the same per-event hooks event_record runs. The rows go in as dicts, and an
    event instance is built only for the reports hook's kinds (most of a batch's
    events are not: "created", "routed", "priority_set"...). Returns the new ids."""
    if not events:
        return []
    from django.db import router
    from django.utils import timezone

    from apps.reports.services import metrics_counts_kind, metrics_record_for_event

    now = timezone.now()
    ids = rows_insert_values(ConversationEvent, (
        {"conversation_id": conv.pk, "kind": kind, "data": data, "created_at": now} for conv, kind, data in events))
    for pk, (conv, kind, data) in zip(ids, events):
        if metrics_counts_kind(kind):
            event = ConversationEvent(pk=pk, conversation=conv, kind=kind, data=data, created_at=now)
            event._state.adding, event._state.db = False, router.db_for_write(ConversationEvent)
            metrics_record_for_event(event=event)
    return ids

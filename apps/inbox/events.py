"""The audit trail writer: every state change a service makes records one event."""
from apps.core.db import rows_insert

from .models import Conversation, ConversationEvent


def event_record(*, conversation: Conversation, kind: str, actor=None, **data) -> ConversationEvent:
    event = ConversationEvent.objects.create(conversation=conversation, kind=kind, actor=actor, data=data)
    # Reports derive their metric events from the audit trail, in the same transaction.
    from apps.reports.services import metrics_record_for_event

    metrics_record_for_event(event=event)
    return event


def events_record_many(*, events: list[tuple[Conversation, str, dict]]) -> list[ConversationEvent]:
    """event_record for a batch (ingest): one INSERT for all rows, then the same
    per-event hooks event_record runs."""
    if not events:
        return []
    rows = rows_insert(ConversationEvent(conversation=conv, kind=kind, data=data) for conv, kind, data in events)
    from apps.reports.services import metrics_record_for_event

    for event in rows:
        metrics_record_for_event(event=event)
    return rows

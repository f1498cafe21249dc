"""The audit trail writer: every state change a service makes records one event.
The layers above hear of each through signals.audit_events_recorded (reports derive their
metric events from it, in the same transaction)."""
from django.utils import timezone

from apps.core.db import rows_insert_values

from .models import Conversation, ConversationEvent
from .signals import AuditRow, audit_events_recorded


def event_record(*, conversation: Conversation, kind: str, actor=None, **data) -> ConversationEvent:
    event = ConversationEvent.objects.create(conversation=conversation, kind=kind, actor=actor, data=data)
    audit_events_recorded.send(sender=ConversationEvent, rows=[
        AuditRow(event.pk, conversation, kind, data, event.created_at, event.actor_id)])
    return event


def events_record_many(*, events: list[tuple[Conversation, str, dict]]) -> list[int]:
    """event_record for a batch (ingest, routing): one INSERT for all rows, then one
    announcement of them all. The rows go in as dicts (no event instances: a receiver
    builds one only for the kinds it counts). Returns the new ids."""
    if not events:
        return []
    now = timezone.now()
    ids = rows_insert_values(ConversationEvent, (
        {"conversation_id": conv.pk, "kind": kind, "data": data, "created_at": now} for conv, kind, data in events))
    audit_events_recorded.send(sender=ConversationEvent, rows=[
        AuditRow(pk, conv, kind, data, now, None) for pk, (conv, kind, data) in zip(ids, events)])
    return ids

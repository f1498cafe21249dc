"""The audit trail writer: every state change a service makes records one event."""
from .models import Conversation, ConversationEvent


def event_record(*, conversation: Conversation, kind: str, actor=None, **data) -> ConversationEvent:
    return ConversationEvent.objects.create(conversation=conversation, kind=kind, actor=actor, data=data)

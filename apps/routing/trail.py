"""What one routing transaction writes besides its rows: the audit events in one INSERT and
the live pushes in one hand-over after the commit (Trail)."""
from __future__ import annotations

from django.db import transaction

from apps.inbox.events import events_record_many
from apps.inbox.models import Conversation
from apps.inbox.realtime import inbox_push_each


class Trail:
    """The audit events and live pushes of one routing transaction, written
    together: the events in one INSERT (events_record_many runs the reports hook
    per event, as event_record does), the pushes in one hand-over after commit."""

    def __init__(self):
        self.events: list[tuple[Conversation, str, dict]] = []
        self.pushes: list[tuple[str, int, dict]] = []

    def event(self, conversation: Conversation, kind: str, **data) -> None:
        self.events.append((conversation, kind, data))

    def push(self, kind: str, conversation_id: int, **data) -> None:
        self.pushes.append((kind, conversation_id, data))

    def write_events(self) -> None:
        events, self.events = self.events, []
        events_record_many(events=events)

    def write(self) -> None:
        """Inside the transaction: the events now, the pushes once it commits."""
        self.write_events()
        pushes, self.pushes = self.pushes, []
        if pushes:
            transaction.on_commit(lambda: inbox_push_each(pushes))

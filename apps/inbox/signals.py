"""What the inbox announces to the layers above it (docs/architecture.md, "Layers").

An upper app (reports) connects its receivers in its AppConfig.ready(); the inbox imports
none of them. Each is sent synchronously, inside the sender's transaction, so what a
receiver writes commits or rolls back with the change it heard of; a receiver's error is
the sender's error, as a direct call was."""
from typing import NamedTuple

from django.dispatch import Signal

from .models import Conversation


class AuditRow(NamedTuple):
    """One audit event as written (events.event_record, events_record_many)."""
    id: int
    conversation: object  # Conversation
    kind: str
    data: dict
    created_at: object  # datetime
    actor_id: int | None


# Audit events were written: rows=[AuditRow, ...], one send per batch.
audit_events_recorded = Signal()
# An agent opened ("open"), worked in ("active") or left ("leave") a conversation's thread:
# conversation_id=, agent_id=, kind= (reports: handle time).
agent_work_signalled = Signal()
# A conversation's work changed (a reply went out, its status or assignee changed): conversation_id=,
# freed_agent_id= (an agent who has room again, or None). Sent inside the change's transaction; routing
# re-times the SLA due times and offers work after the commit.
conversation_work_changed = Signal()
# A conversation was resolved and a survey is due: the agent picked one on the resolve form or in
# the API, or the channel account's policy sends one (`survey_auto`): conversation=, actor=,
# kind= ("csat" | "ces" | "nps"), automatic= (True: the policy's). The receiver returns a
# SurveyOutcome. No receiver: this installation sends no surveys.
survey_requested = Signal()


class SurveyOutcome(NamedTuple):
    """What became of a requested survey: sent, or not and why (no private messages on the
    channel, the customer had one within the channel's limit)."""
    kind: str
    sent: bool
    reason: str = ""


def conversation_work_announce(conversation_id: int, freed_agent_id: int | None = None) -> None:
    """Tells routing (apps/routing/receivers.py) that a conversation's work changed: it brings
    the SLA due times up to date and gives a freed agent new work, after the commit."""
    conversation_work_changed.send(sender=Conversation, conversation_id=conversation_id, freed_agent_id=freed_agent_id)

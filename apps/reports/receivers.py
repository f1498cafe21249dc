"""What reports hear from the inbox below them (apps/inbox/signals.py), connected in
ReportsConfig.ready(). Each calls the service through the module, so a test that swaps
the service swaps what the receiver calls."""
from django.db import router
from django.dispatch import receiver

from apps.inbox.models import ConversationEvent
from apps.inbox.signals import agent_work_signalled, audit_events_recorded, survey_requested

from . import services


@receiver(audit_events_recorded, dispatch_uid="reports.metrics_from_audit")
def metrics_from_audit(sender, *, rows, **kwargs) -> None:
    """Metric events derived from the audit rows of the kinds reports count, in their transaction."""
    db = None
    for row in rows:
        if not services.metrics_counts_kind(row.kind):
            continue
        event = ConversationEvent(pk=row.id, conversation=row.conversation, kind=row.kind, data=row.data,
                                  created_at=row.created_at, actor_id=row.actor_id)
        db = db or router.db_for_write(ConversationEvent)
        event._state.adding, event._state.db = False, db
        services.metrics_record_for_event(event=event)


@receiver(agent_work_signalled, dispatch_uid="reports.work_session")
def work_session_from_signal(sender, *, conversation_id: int, agent_id: int, kind: str, **kwargs):
    return services.work_session_signal(conversation_id=conversation_id, agent_id=agent_id, kind=kind)


@receiver(survey_requested, dispatch_uid="reports.survey")
def survey_on_resolve(sender, *, conversation, actor, **kwargs):
    return services.survey_send(conversation=conversation, actor=actor)

"""What reports hear from the inbox below them (apps/inbox/signals.py), connected in
ReportsConfig.ready(). Each calls the service through the module, so a test that swaps
the service swaps what the receiver calls."""
from django.dispatch import receiver

from apps.inbox.signals import agent_work_signalled, audit_events_recorded, survey_requested

from . import handle_time, services, surveys


@receiver(audit_events_recorded, dispatch_uid="reports.metrics_from_audit")
def metrics_from_audit(sender, *, rows, **kwargs) -> None:
    services.metrics_record_for_audit_rows(rows=rows)


@receiver(agent_work_signalled, dispatch_uid="reports.work_session")
def work_session_from_signal(sender, *, conversation_id: int, agent_id: int, kind: str, **kwargs):
    return handle_time.work_session_signal(conversation_id=conversation_id, agent_id=agent_id, kind=kind)


@receiver(survey_requested, dispatch_uid="reports.survey")
def survey_on_resolve(sender, *, conversation, actor, kind: str = "csat", automatic: bool = False, **kwargs):
    return surveys.survey_for_resolve(conversation=conversation, actor=actor, kind=kind, automatic=automatic)

"""Thin Celery tasks on the `routing` queue (CELERY_TASK_ROUTES "routing.*")."""
import datetime as dt
import logging

from celery import shared_task

from . import backlog, services, sla
from .selectors import messages_unrouted


@shared_task(name="routing.route_conversation", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def conversation_route_task(conversation_id: int, message_ids: list[int], take_pending: bool = True):
    """One conversation (a one-mention push delivery, a retry), routed together
    with whatever else waits on the pending list; a retry routes its own alone."""
    if take_pending and not conversation_route_task.request.retries:
        services.conversations_route_now(pairs=[[conversation_id, message_ids]])
    else:
        services.conversation_route(conversation_id=conversation_id, message_ids=message_ids)


@shared_task(name="routing.agent_available", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def agent_available_task(agent_id: int):
    backlog.agent_available(agent_id=agent_id)


@shared_task(name="routing.conversation_followup", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def conversation_followup_task(conversation_id: int, freed_agent_id: int | None = None):
    backlog.conversation_followup(conversation_id=conversation_id, freed_agent_id=freed_agent_id)


@shared_task(name="routing.age_priorities", ignore_result=True)
def priorities_age_task():
    """Beat: waiting conversations climb in priority."""
    sla.priorities_age()


@shared_task(name="routing.check_sla", ignore_result=True)
def sla_breaches_check_task():
    """Beat: record SLA breaches and raise them to supervisors."""
    sla.sla_breaches_check()


@shared_task(name="routing.route_conversations", acks_late=True, ignore_result=True)
def conversations_route_task(pairs: list[list]):
    """A whole ingest batch in one task ([[conversation_id, message_ids], ...]),
    with the batches waiting on the pending list (services.conversations_route_later):
    a task per conversation cost more than the routing itself (docs/performance-history.md)."""
    services.conversations_route_now(pairs=pairs)


@shared_task(name="routing.unrouted_sweep", ignore_result=True)
def unrouted_sweep_task():
    """Beat: routes customer messages whose routing task never ran (lost with Redis,
    or failed every retry), so a stored mention always reaches a queue."""
    from django.conf import settings

    pairs = messages_unrouted(older_than=dt.timedelta(seconds=settings.ROUTING_UNROUTED_AFTER_SECONDS))
    if pairs:
        logging.getLogger(__name__).warning("routing sweep: %d conversations had unrouted messages", len(pairs))
        services.conversations_route_now(pairs=[[c, ids] for c, ids in pairs])

from celery import shared_task

from .models import User
from .services import presence_sweep

BULK_CHUNK = 200


@shared_task(name="accounts.presence_sweep", ignore_result=True)
def presence_sweep_task():
    # Idempotent and re-run every minute by beat: no retry needed.
    return presence_sweep()


@shared_task(name="accounts.bulk_assign", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def bulk_assign_task(*, ids: list[int], actor_id: int, reason: str = "", to_agent_id: int | None = None,
                     to_queue_id: int | None = None):
    """A large reassignment, in chunks (short transactions, short locks). Safe to
    run again after a crash: what already moved is left as it is."""
    from apps.inbox.services import conversations_bulk_assign
    from apps.routing.models import Queue

    actor = User.objects.get(pk=actor_id)
    to_agent = User.objects.get(pk=to_agent_id) if to_agent_id else None
    to_queue = Queue.objects.get(pk=to_queue_id) if to_queue_id else None
    for start in range(0, len(ids), BULK_CHUNK):
        conversations_bulk_assign(conversations=ids[start:start + BULK_CHUNK], to_agent=to_agent,
                                  to_queue=to_queue, actor=actor, reason=reason)

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.accounts.models import User

from .models import Queue
from .reassignment import conversations_bulk_assign
from .sending import SendRetry, message_send, message_send_failed, messages_send_sweep


# A dropped database connection (e.g. after the post, before `sent` is written) is
# retried: the reply stays `sending` and the retry finds the post on the network.
@shared_task(name="outbound.send_message", bind=True, acks_late=True, ignore_result=True, max_retries=20,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=2, retry_jitter=False)
def message_send_task(self, message_id: int):
    """Posts one reply. acks_late: a worker killed mid-send leaves the task on
    the broker; the redelivery sees `sending` and checks the network first."""
    try:
        message_send(message_id=message_id)
    except SendRetry as exc:
        if self.request.retries >= self.max_retries:
            message_send_failed(message_id=message_id, reason=f"Gave up after {self.max_retries} tries: {exc.reason}")
            return
        raise self.retry(countdown=exc.countdown, exc=exc)


@shared_task(name="outbound.send_sweep", ignore_result=True)
def messages_send_sweep_task():
    """Beat: replies whose send task was lost (a Redis restart) are sent again."""
    messages_send_sweep()


# A large reassignment's chunks. Named "accounts.bulk_assign" still: the messages queued before
# it moved here (from apps/accounts/tasks.py, issue 20) keep running.
BULK_CHUNK = 200


@shared_task(name="accounts.bulk_assign", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def bulk_assign_task(*, ids: list[int], actor_id: int, reason: str = "", to_agent_id: int | None = None,
                     to_queue_id: int | None = None):
    """A large reassignment, in chunks (short transactions, short locks). Safe to
    run again after a crash: what already moved is left as it is."""
    actor = User.objects.get(pk=actor_id)
    to_agent = User.objects.get(pk=to_agent_id) if to_agent_id else None
    to_queue = Queue.objects.get(pk=to_queue_id) if to_queue_id else None
    for start in range(0, len(ids), BULK_CHUNK):
        conversations_bulk_assign(conversations=ids[start:start + BULK_CHUNK], to_agent=to_agent,
                                  to_queue=to_queue, actor=actor, reason=reason)

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import SendRetry, message_send, message_send_failed, messages_send_sweep


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

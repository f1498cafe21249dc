from celery import shared_task

from .services import presence_sweep


@shared_task(name="accounts.presence_sweep", ignore_result=True)
def presence_sweep_task():
    # Idempotent and re-run every minute by beat: no retry needed.
    return presence_sweep()

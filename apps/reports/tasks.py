"""Report tasks (queue `reports`): thin wrappers around the services."""
from celery import shared_task
from django.core.cache import cache

from . import services
from .digest import digests_send_weekly


@shared_task(name="reports.apply_rollups", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def rollups_apply_task():
    services.inbound_messages_record()
    services.work_sessions_close_idle()
    services.rollups_apply()
    services.spikes_detect()


def rollups_apply_soon() -> None:
    """Many changes in a few seconds ask for one apply, not one each."""
    if cache.add("reports:apply-soon", 1, timeout=5):
        rollups_apply_task.apply_async(countdown=5)


@shared_task(name="reports.weekly_digest", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def weekly_digest_task():
    digests_send_weekly()

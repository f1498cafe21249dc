"""Report tasks (queue `reports`): thin wrappers around the services."""
from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from . import cache as report_cache
from . import handle_time, inbound, pacing, rollups, spikes
from .digest import digests_send_weekly


@shared_task(name="reports.apply_rollups", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def rollups_apply_task():
    if pacing.rollups_wait_for_inbox():
        return
    # asked again between transactions: a run that started before a burst steps aside in it
    recorded = inbound.inbound_messages_record(pause=pacing.rollups_wait_for_inbox)
    handle_time.work_sessions_close_idle()
    applied = rollups.rollups_apply(pause=pacing.rollups_wait_for_inbox)
    alerts = spikes.spikes_detect()
    if applied or alerts:
        reports_warm_soon()
    if recorded >= inbound.INBOUND_BATCH:
        # More messages waiting: the next run now. Beat's one a minute counted 5,000 a minute,
        # and a 500/s stream (30,000 a minute) left the reports further behind every minute.
        rollups_apply_task.apply_async()


def reports_warm_soon() -> None:
    """One warm at a time: applies seconds apart under traffic ask for one."""
    if cache.add("reports:warm-soon", 1, timeout=getattr(settings, "REPORTS_CACHE_WARM_EVERY_SECONDS", 30)):
        reports_warm_task.apply_async(countdown=1)


@shared_task(name="reports.warm_cache", acks_late=True, ignore_result=True)
def reports_warm_task():
    """Builds the reports the pages open by default for the new data (apps/reports/cache.py)."""
    report_cache.reports_warm()


@shared_task(name="reports.weekly_digest", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def weekly_digest_task():
    digests_send_weekly()

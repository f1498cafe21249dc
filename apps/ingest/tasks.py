"""Thin Celery tasks: ids in, one service call. Queue `ingest` (CELERY_TASK_ROUTES)."""
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.connectors.providers import polls
from apps.connectors.providers.base import ProviderError, mention_from_dict

from .polling import account_poll
from .push import push_deliveries_prune, push_deliveries_requeue, push_delivery_ingest
from .services import mentions_ingest

log = logging.getLogger(__name__)
# Long enough for a normal poll. A lock that outlives its poll (Redis restarted with
# AOF while the poll ran, so the release below failed) holds the account back for at
# most this long (it was 300 s: the soak saw an account stall 5 minutes). A lock that
# expires under a very slow poll costs a second fetch, which the unique key dedupes.
POLL_LOCK_SECONDS = 60


@shared_task(name="connectors.poll_due_accounts", ignore_result=True)
def poll_due_accounts_task():
    """Beat: one poll task per active account that is due (each in its own task,
    so a broken account never slows the others)."""
    now = timezone.now()
    rows = ChannelAccount.objects.filter(is_active=True).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)
    ).values_list("pk", "provider")
    for account_id, provider in rows:
        if polls(provider):  # push-only channels (generic webhook) have nothing to poll
            account_poll_task.delay(account_id)


# A dropped database connection (restart, failover, pg_terminate_backend) is retried;
# the cursor was not advanced, so the retry re-fetches and loses nothing.
@shared_task(name="connectors.poll_account", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_jitter=False, max_retries=5)
def account_poll_task(self, account_id: int):
    # A lock in Redis (the cache) stops two polls of one account at once. It holds
    # the task id: a redelivery of this same task (its worker was killed while
    # holding the lock) takes the lock over instead of waiting POLL_LOCK_SECONDS.
    lock_key = f"poll-lock:{account_id}"
    owner = self.request.id or "direct-call"
    if not cache.add(lock_key, owner, POLL_LOCK_SECONDS) and cache.get(lock_key) != owner:
        log.info("account %s is already being polled", account_id)
        return
    try:
        account = ChannelAccount.objects.filter(pk=account_id, is_active=True).first()
        if account is None:
            return
        # Polls queued before another poll failed must not each count an error: one
        # 3-request outage escalated the backoff 8x (the soak saw an account wait an hour).
        if account.next_poll_at and account.next_poll_at > timezone.now():
            log.info("account %s is backing off until %s: poll skipped", account_id, account.next_poll_at)
            return
        try:
            account_poll(account=account)
        except ProviderError:
            pass  # recorded on the account with its backoff; beat tries again when due
    finally:
        try:
            if cache.get(lock_key) == owner:
                cache.delete(lock_key)
        except Exception:  # noqa: BLE001 - Redis down: the poll itself is done; the lock expires
            log.warning("poll lock of account %s not released (Redis unreachable); it expires within %s s",
                        account_id, POLL_LOCK_SECONDS)


@shared_task(name="ingest.mentions", acks_late=True, ignore_result=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=10)
def mentions_ingest_task(account_id: int, mentions: list[dict]):
    """Normalized mentions handed over in the task itself (the benchmarks). Webhooks
    use ingest.push_delivery instead: their delivery is kept in PostgreSQL first.
    Routed in this task once stored (no routing task per batch: docs/performance-history.md item 22)."""
    account = ChannelAccount.objects.get(pk=account_id)
    mentions_ingest(account=account, mentions=[mention_from_dict(m) for m in mentions], route_now=True)


# Every failure is counted on its delivery by the service (a batch that raises is halved
# until the poison one fails alone; failed after PUSH_DELIVERY_MAX_ATTEMPTS). It raises
# only while the database is unreachable: retried by Celery, the sweep behind that.
@shared_task(name="ingest.push_delivery", acks_late=True, ignore_result=True,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_jitter=False, max_retries=5)
def push_delivery_ingest_task(delivery_id: int):
    push_delivery_ingest(delivery_id=delivery_id)


@shared_task(name="connectors.push_deliveries_sweep", ignore_result=True)
def push_deliveries_sweep_task():
    """Beat: deliveries still pending after PUSH_REDELIVER_SECONDS go to the ingest queue
    again; done ones older than PUSH_DELIVERY_KEEP_DAYS are dropped."""
    push_deliveries_requeue(older_than_seconds=settings.PUSH_REDELIVER_SECONDS)
    push_deliveries_prune(older_than_days=settings.PUSH_DELIVERY_KEEP_DAYS)

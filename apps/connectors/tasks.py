"""Thin Celery tasks: ids in, one service call. Queue `ingest` (CELERY_TASK_ROUTES)."""
import logging

from celery import shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from .models import ChannelAccount
from .providers import polls
from .providers.base import ProviderError, mention_from_dict
from .services import account_poll, mentions_ingest

log = logging.getLogger(__name__)
POLL_LOCK_SECONDS = 300


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
        try:
            account_poll(account=account)
        except ProviderError:
            pass  # recorded on the account with its backoff; beat tries again when due
    finally:
        if cache.get(lock_key) == owner:
            cache.delete(lock_key)


@shared_task(name="ingest.mentions", acks_late=True, ignore_result=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=10)
def mentions_ingest_task(account_id: int, mentions: list[dict]):
    """Push deliveries (webhooks) hand their normalized mentions here."""
    account = ChannelAccount.objects.get(pk=account_id)
    mentions_ingest(account=account, mentions=[mention_from_dict(m) for m in mentions])

"""Polling: an account's due poll fetches its new mentions through its network's client and
hands them to ingest (services.mentions_ingest); a failure backs the account off (longer
for credentials the network refused) and is shown on the connector-health page."""
from __future__ import annotations

import datetime as dt
import logging
import random

from django.db import transaction
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.connectors.providers import get_provider
from apps.connectors.providers.base import AuthError, PermanentError, ProviderError, RateLimited
from apps.core.request_id import request_id_current
from apps.core.task_queue import task_named

from .services import IngestResult, Origin, mentions_ingest

log = logging.getLogger(__name__)


# --- polling --------------------------------------------------------------------
# A transient error (a timeout, a 5xx, a malformed page) is retried soon: 5 s doubling, at
# most 15 s (the beat's poll interval: a failing poll is never retried later than a healthy
# one would poll), jittered so accounts that failed together do not retry together. It was
# 30 s doubling to an hour: six in a row put the next poll 16 minutes out (issue 18). A cap of
# 60 s still made streaks: the longer the wait, the likelier the next poll meets the network's
# next bad moment (the 30-minute soak's poll p99 was 266 s with 60 s, under its bound with 15 s).
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 15
# Refused credentials (and a permanent refusal) rarely mend within seconds: 5 min doubling to an hour.
AUTH_BACKOFF_BASE_SECONDS = 300
AUTH_BACKOFF_MAX_SECONDS = 3600


def poll_backoff_seconds(*, error: ProviderError, errors: int, now: dt.datetime) -> float:
    """Seconds until the next poll after `errors` failures in a row, the last one `error`.
    A 429 waits for its reset. A transient error doubles from 5 s to at most 15 s, the
    upper half jittered (between half and all of the doubled delay); refused credentials
    double from 5 min to an hour, plus up to a tenth."""
    if isinstance(error, RateLimited) and error.reset_at and error.reset_at > now:
        return (error.reset_at - now).total_seconds()
    doublings = min(max(errors, 1) - 1, 20)
    if isinstance(error, (AuthError, PermanentError)):
        delay = min(AUTH_BACKOFF_BASE_SECONDS * 2 ** doublings, AUTH_BACKOFF_MAX_SECONDS)
        return delay + random.uniform(0, delay / 10)
    delay = min(BACKOFF_BASE_SECONDS * 2 ** doublings, BACKOFF_MAX_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)


def account_poll(*, account: ChannelAccount) -> IngestResult:
    """Fetch, store, then advance the cursor. Provider errors are recorded on
    the account (the connector-health view shows them) with a backoff."""
    now = timezone.now()
    provider = get_provider(account)
    started_from = dict(account.poll_cursor or {})
    try:
        poll = provider.fetch_mentions(dict(started_from))
    except ProviderError as exc:
        account_poll_failed(account=account, error=exc)
        raise
    fetched = Origin(timezone.now(), request_id_current())
    result = mentions_ingest(account=account, mentions=poll.mentions, route_now=True,
                             origins=[fetched] * len(poll.mentions))
    # Only now, after the rows committed, does the cursor move, and only from where this
    # poll started: two polls at once (the Redis lock lost in a Redis restart) must not
    # set the cursor back; a later poll refetches from the kept one and the unique key dedupes.
    state = {"last_polled_at": now, "last_success_at": now, "last_error": "", "consecutive_errors": 0,
             "rate_limited_until": None, "next_poll_at": None if poll.complete else now}
    if ChannelAccount.objects.filter(pk=account.pk, poll_cursor=started_from).update(poll_cursor=poll.cursor, **state):
        account.poll_cursor = poll.cursor
    else:
        log.info("account %s: another poll moved the cursor meanwhile; keeping that one", account.pk)
        ChannelAccount.objects.filter(pk=account.pk).update(**state)
    return result


def account_poll_failed(*, account: ChannelAccount, error: ProviderError) -> None:
    now = timezone.now()
    errors = account.consecutive_errors + 1
    next_poll = now + dt.timedelta(seconds=poll_backoff_seconds(error=error, errors=errors, now=now))
    limited = error.reset_at if isinstance(error, RateLimited) else None
    ChannelAccount.objects.filter(pk=account.pk).update(
        last_polled_at=now, last_error=error.reason[:2000], consecutive_errors=errors,
        next_poll_at=next_poll, rate_limited_until=limited,
    )
    log.warning("poll of account %s failed: %s", account.pk, error.reason)



def account_poll_retry(*, account: ChannelAccount, actor=None) -> None:
    """An admin or supervisor asks for a poll now (after fixing credentials): the
    backoff is lifted and the account is polled in its own task."""
    with transaction.atomic():
        ChannelAccount.objects.filter(pk=account.pk).update(next_poll_at=timezone.now())
        transaction.on_commit(lambda: task_named("connectors.poll_account").delay(account.pk))
    log.info("poll of account %s requested by %s", account.pk, getattr(actor, "username", "system"))

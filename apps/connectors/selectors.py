"""Reads for the connector-health page and API."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import ngettext

from .models import ChannelAccount, PushDelivery
from .providers import polls

# Poll lag beyond this many poll intervals (and at least 5 minutes) counts as stale.
STALE_INTERVALS = 10


def push_account_get(*, provider: str, account_id: int) -> ChannelAccount | None:
    """The active account a push delivery's URL names (/hooks/<provider>/<account>/). Raw SQL:
    compiling filter(...).first() was two fifths of the web tier's Python time per delivery
    (issue 19); the row and its decryption are the same. On the production web tier the
    answer is kept for PUSH_ACCOUNT_CACHE_SECONDS (push_account_cache_enable)."""
    key = (provider, account_id)
    if _push_accounts is not None:
        hit = _push_accounts.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    table = ChannelAccount._meta.db_table
    found = list(ChannelAccount.objects.raw(f"SELECT * FROM {table} WHERE id = %s AND provider = %s AND is_active",
                                            [account_id, provider]))
    account = found[0] if found else None
    if _push_accounts is not None:
        if len(_push_accounts) >= PUSH_ACCOUNTS_KEPT:  # ids guessed by a stranger do not grow it without end
            _push_accounts.clear()
        _push_accounts[key] = (time.monotonic() + _push_accounts_seconds, account)
    return account


# The hooks handler's process keeps each account it looked up (and each id that named none) for a
# few seconds: the look-up, a pool checkout with its health check and the credentials' decryption
# were a third of a delivery's time on the web tier (issue 19). So a deactivated account, or a
# rotated secret, reaches the webhook up to that many seconds later (docs/connectors.md).
PUSH_ACCOUNTS_KEPT = 1000
_push_accounts: dict[tuple[str, int], tuple[float, ChannelAccount | None]] | None = None
_push_accounts_seconds = 0.0


def push_account_cache_enable(seconds: float) -> None:
    global _push_accounts, _push_accounts_seconds
    _push_accounts_seconds = seconds
    _push_accounts = {} if seconds > 0 else None


def duration_short(seconds: int | None) -> str:
    """12 s, 4 min, 2 h 5 min, 3 d: lags at a glance."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"


@dataclass(frozen=True)
class AccountHealth:
    account: ChannelAccount
    state: str  # ok, waiting, failing, rate_limited, stale, behind, paused, push
    state_label: str
    polls: bool
    lag: dt.timedelta | None  # since the last successful poll (or push delivery)
    retry_in: dt.timedelta | None  # until the next poll when backing off or rate limited
    push_failed: int = 0  # push deliveries whose ingest failed for good (error on the account)
    push_pending: int = 0  # accepted push deliveries not stored yet
    # polled, and the last successful poll is older than POLL_FALLING_BEHIND_SECONDS: what the
    # network holds reaches the inbox late, however well the errors are retried
    falling_behind: bool = False

    @property
    def lag_seconds(self) -> int | None:
        return int(self.lag.total_seconds()) if self.lag is not None else None

    @property
    def lag_display(self) -> str:
        return duration_short(self.lag_seconds)

    @property
    def retry_in_seconds(self) -> int | None:
        return int(self.retry_in.total_seconds()) if self.retry_in is not None else None

    @property
    def retry_in_display(self) -> str:
        return duration_short(self.retry_in_seconds)


def _health(account: ChannelAccount, now: dt.datetime, stale_after: dt.timedelta,
            behind_after: dt.timedelta) -> AccountHealth:
    polled = polls(account.provider)
    since = account.last_success_at if polled else account.last_push_at
    lag = now - since if since else None
    retry_in = account.next_poll_at - now if account.next_poll_at and account.next_poll_at > now else None
    # never a successful poll counts from when the account was added
    behind = polled and account.is_active and now - (since or account.created_at) > behind_after
    if not account.is_active:
        state, label = "paused", "Paused"
    elif account.rate_limited_until and account.rate_limited_until > now:
        state, label = "rate_limited", "Rate limited"
    elif polled and account.consecutive_errors:
        state, label = "failing", f"Failing ({account.consecutive_errors} in a row)"
        if behind:
            label += " · falling behind"
    elif not polled and account.push_failed:
        state, label = "failing", "Push only · " + ngettext(
            "%d delivery failed", "%d deliveries failed", account.push_failed) % account.push_failed
    elif not polled:
        state, label = "push", "Push only" + (" · refusing deliveries" if account.last_push_error else "")
    elif since is None:
        state, label = "waiting", "Not polled yet"
    elif lag > stale_after:
        state, label = "stale", "Stale · falling behind"  # not polled at all: is beat running?
    elif behind:
        state, label = "behind", "Falling behind"
    else:
        state, label = "ok", "OK"
    if behind and state == "rate_limited":
        label += " · falling behind"
    return AccountHealth(account=account, state=state, state_label=label, polls=polled, lag=lag, retry_in=retry_in,
                         push_failed=account.push_failed, push_pending=account.push_pending, falling_behind=behind)


def falling_behind_seconds() -> int:
    """A polled account whose last successful poll is older than this is falling behind."""
    return int(settings.POLL_FALLING_BEHIND_SECONDS)


def _deliveries(status: str):
    """Count of the account's push deliveries in one status (a subquery on the
    (account, status) index: done deliveries pile up and are never scanned)."""
    rows = (PushDelivery.objects.filter(account=OuterRef("pk"), status=status).order_by()
            .values("account").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def account_health_list(*, now: dt.datetime | None = None, account_id: int | None = None) -> list[AccountHealth]:
    """Every account (or the one named), troubled ones first. Secrets are not loaded (nor decrypted)."""
    now = now or timezone.now()
    beat = (getattr(settings, "CELERY_BEAT_SCHEDULE", {}) or {}).get("poll-all-accounts") or {}
    interval = dt.timedelta(seconds=float(beat.get("schedule") or 15.0))
    stale_after = max(interval * STALE_INTERVALS, dt.timedelta(minutes=5))
    behind_after = dt.timedelta(seconds=falling_behind_seconds())
    accounts = (ChannelAccount.objects.defer("credentials", "hook_secrets", "poll_cursor")
                .annotate(push_failed=_deliveries(PushDelivery.Status.FAILED),
                          push_pending=_deliveries(PushDelivery.Status.PENDING))
                .order_by("provider", "name"))
    if account_id is not None:
        accounts = accounts.filter(pk=account_id)
    rows = [_health(a, now, stale_after, behind_after) for a in accounts]
    order = {"failing": 0, "rate_limited": 1, "stale": 2, "behind": 3, "waiting": 4, "push": 5, "ok": 6,
             "paused": 7}
    return sorted(rows, key=lambda r: order.get(r.state, 9))


def account_health_get(*, account_id: int) -> AccountHealth | None:
    rows = account_health_list(account_id=account_id)
    return rows[0] if rows else None

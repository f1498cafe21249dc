"""Reads for /metrics, computed when Prometheus scrapes: six indexed queries and one
Redis pipeline, however many accounts, messages or deliveries there are (the query
count is asserted in tests/ops/test_metrics.py). Nothing here writes. What is watched
is read from the rows the pipeline keeps anyway, and from the one figure routing
records for it: the arrival -> routed histogram in Redis (apps/routing/routed_latency.py)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone

from apps.connectors.models import ChannelAccount, PushDelivery
from apps.connectors.providers import polls
from apps.connectors.selectors import falling_behind_seconds
from apps.inbox.models import ConversationEvent, Message
from apps.reports.selectors import inbound_uncounted_oldest_at
from apps.routing import routed_latency
from apps.routing.models import UnroutedMessage

# replies_failed_recent counts the reply_failed audit events of this trailing window
REPLIES_FAILED_WINDOW = dt.timedelta(hours=1)


def _age(now: dt.datetime, since: dt.datetime | None) -> float | None:
    return max((now - since).total_seconds(), 0.0) if since else None


@dataclass
class AccountWatch:
    id: int
    provider: str
    handle: str
    polls: bool
    consecutive_errors: int
    rate_limited: bool
    falling_behind: bool
    # polled accounts: since the last successful poll (or since the account was added, never polled)
    poll_lag_seconds: float | None
    last_push_age_seconds: float | None  # since the last push delivery accepted (quiet is not late)
    push_pending: int = 0
    push_pending_oldest_age_seconds: float = 0.0
    push_failed: int = 0


def accounts_watch(*, now: dt.datetime | None = None) -> list[AccountWatch]:
    """Every active account with its poll health and push backlog: two queries (the
    accounts; the pending and failed deliveries grouped, from push_delivery_status_idx:
    done deliveries pile up for days and are never read)."""
    now = now or timezone.now()
    behind_after = dt.timedelta(seconds=falling_behind_seconds())
    rows: dict[int, AccountWatch] = {}
    accounts = (ChannelAccount.objects.filter(is_active=True).order_by("pk")
                .only("provider", "handle", "created_at", "last_success_at", "last_push_at",
                      "consecutive_errors", "rate_limited_until"))
    for a in accounts:
        polled = polls(a.provider)
        since = a.last_success_at or a.created_at  # the rule of connectors.selectors._health
        rows[a.pk] = AccountWatch(
            id=a.pk, provider=a.provider, handle=a.handle, polls=polled,
            consecutive_errors=a.consecutive_errors if polled else 0,
            rate_limited=bool(a.rate_limited_until and a.rate_limited_until > now),
            falling_behind=polled and now - since > behind_after,
            poll_lag_seconds=_age(now, since) if polled else None,
            last_push_age_seconds=_age(now, a.last_push_at))
    backlog = (PushDelivery.objects.filter(status__in=[PushDelivery.Status.PENDING, PushDelivery.Status.FAILED])
               .values("account_id", "status").annotate(n=Count("id"), oldest=Min("created_at")).order_by())
    for r in backlog:
        row = rows.get(r["account_id"])
        if row is None:  # a paused account's deliveries: not watched
            continue
        if r["status"] == PushDelivery.Status.PENDING:
            row.push_pending, row.push_pending_oldest_age_seconds = r["n"], _age(now, r["oldest"]) or 0.0
        else:
            row.push_failed = r["n"]
    return list(rows.values())


@dataclass
class RepliesWatch:
    # queued / sending: count and the oldest one's age since it was written
    in_flight: dict[str, tuple[int, float]] = field(default_factory=dict)
    failed_recent: int = 0  # replies that ended failed within REPLIES_FAILED_WINDOW


def replies_watch(*, now: dt.datetime | None = None) -> RepliesWatch:
    """Two queries: replies in flight from the partial index msg_send_pending (its
    predicate is exactly this filter: a handful of rows, however big the table), and the
    reply_failed audit events of the last hour (Message has no index on a failed status; the
    events' kind index reads the reply_failed rows only, a few against millions of others)."""
    now = now or timezone.now()
    statuses = [Message.SendStatus.QUEUED, Message.SendStatus.SENDING]
    out = RepliesWatch(in_flight={s.value: (0, 0.0) for s in statuses})
    rows = (Message.objects.filter(send_status__in=statuses).values("send_status")
            .annotate(n=Count("id"), oldest=Min("created_at")).order_by())
    for r in rows:
        out.in_flight[r["send_status"]] = (r["n"], _age(now, r["oldest"]) or 0.0)
    out.failed_recent = ConversationEvent.objects.filter(
        kind="reply_failed", created_at__gte=now - REPLIES_FAILED_WINDOW).count()
    return out


def unrouted_watch(*, now: dt.datetime | None = None) -> tuple[int, float]:
    """(customer messages stored and not routed yet, the oldest one's age since it was
    stored): the arrival -> routed backlog. One statement: the marker table is small (the
    in-flight messages) and the oldest is its lowest message id, looked up by primary key,
    never a join of the markers with the message table."""
    now = now or timezone.now()
    markers, messages = UnroutedMessage._meta.db_table, Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {markers}), "  # noqa: S608 - table names from the models
            f"(SELECT created_at FROM {messages} WHERE id = (SELECT min(message_id) FROM {markers}))")
        count, oldest = cursor.fetchone()
    return count, (_age(now, oldest) or 0.0)


def reports_uncounted_age(*, now: dt.datetime | None = None) -> float:
    """Seconds since the oldest customer message the reports have not counted yet was stored
    (0: none): how far the reports are behind the inbox (reports.apply_rollups runs on the
    lowest-priority worker and falls behind while the box is saturated)."""
    return _age(now or timezone.now(), inbound_uncounted_oldest_at()) or 0.0


# --- Redis: the Celery queues --------------------------------------------------

_redis = None


def _redis_client():
    global _redis
    if _redis is None:
        import redis

        # a scrape must answer even when Redis hangs: short timeouts, then the redis figures are skipped
        _redis = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
    return _redis


def celery_queue_names() -> list[str]:
    routes = getattr(settings, "CELERY_TASK_ROUTES", {}) or {}
    names = {r["queue"] for r in routes.values() if isinstance(r, dict) and r.get("queue")}
    names.add(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))
    return sorted(names)


@dataclass
class BrokerWatch:
    queues: dict[str, int]  # tasks waiting per Celery queue (all its priority lists)
    unacked: int  # taken by a worker and not acknowledged yet (running, or reserved)
    routing_pending: int  # ingest batches waiting on routing's pending list
    routed: routed_latency.RoutedHistogram  # arrival -> routed latency of customer messages, every worker's


def broker_watch() -> BrokerWatch | None:
    """One pipelined round trip, or None without a Redis broker (embedded mode).
    kombu keeps a queue with priorities as several lists: the queue's own name for
    priority 0 and `<queue>\\x06\\x16<step>` for the other steps (3, 6, 9 by default), all
    behind the transport's global_keyprefix: the depth is their sum."""
    if not getattr(settings, "REDIS_URL", ""):
        return None
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    prefix = options.get("global_keyprefix", "")
    steps = options.get("priority_steps", PRIORITY_STEPS)
    names = celery_queue_names()
    keys = {q: [prefix + q] + [f"{prefix}{q}{Channel.sep}{s}" for s in steps if s] for q in names}
    pipe = _redis_client().pipeline(transaction=False)
    for q in names:
        for key in keys[q]:
            pipe.llen(key)
    pipe.hlen(prefix + Channel.unacked_key)
    pipe.llen(f"routing:pending:{connection.settings_dict['NAME']}")  # apps.routing.pending.pending_list
    pipe.hgetall(routed_latency.redis_key())
    replies = iter(pipe.execute())
    queues = {q: sum(next(replies) for _ in keys[q]) for q in names}
    return BrokerWatch(queues=queues, unacked=next(replies), routing_pending=next(replies),
                       routed=routed_latency.routed_histogram_parse(next(replies)))

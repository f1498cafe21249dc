"""How long customer messages took from arrival to routed: a Prometheus histogram kept in
Redis (cxinbox_mention_routed_seconds on /metrics, apps/ops).

Routing runs in Celery workers and /metrics is answered by the web processes, maybe on
other hosts, so the counts live where all of them read them: one Redis hash per
database, a field per bucket plus the sum (bounded, whatever the
traffic), incremented in one pipelined round trip per routed batch, after its commit.
The buckets are stored per bucket and summed at read, cumulative like any Prometheus
histogram (a reset only when Redis loses its data; rate() copes). Arrival is when the
message reached us (UnroutedMessage.arrived_at: the webhook's accept, the poll's
fetch), routed is the commit of the routing transaction. Without Redis (the embedded
mode) nothing is recorded."""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

# seconds; +Inf beyond. The soak's bound on a path's p99 is 120 s; a healthy push is routed within ~1 s.
BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_FIELDS = tuple(repr(b) for b in BUCKETS) + ("+Inf",)
_redis = None


def redis_key() -> str:
    """One histogram per database (tests and several deployments may share a Redis)."""
    return f"routing:routed-seconds:{connection.settings_dict['NAME']}"


def _client():
    global _redis
    if _redis is None:
        import redis

        # a batch is routed and committed already: a hung Redis must not hold the worker
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
    return _redis


def routed_record(seconds: list[float]) -> None:
    """Counts one routed batch's latencies: one HINCRBY per bucket it touched and the sum,
    in one round trip (the count is the buckets' total). Never raises (the routing is committed)."""
    if not seconds or not getattr(settings, "REDIS_URL", ""):
        return
    per_bucket: dict[str, int] = {}
    for s in seconds:
        field = _FIELDS[bisect.bisect_left(BUCKETS, s)]  # le: a value on a bound counts in that bucket
        per_bucket[field] = per_bucket.get(field, 0) + 1
    key = redis_key()
    try:
        pipe = _client().pipeline(transaction=False)
        for field, n in per_bucket.items():
            pipe.hincrby(key, field, n)
        pipe.hincrbyfloat(key, "sum", sum(seconds))
        pipe.execute()
    except Exception:  # noqa: BLE001 - a gap in a metric, never a routing failure
        log.warning("routing: arrival -> routed latency not recorded (Redis unreachable)", exc_info=True)


@dataclass
class RoutedHistogram:
    buckets: list[tuple[str, int]]  # (le, cumulative count), +Inf last
    count: int
    sum: float


def routed_histogram_parse(raw: dict) -> RoutedHistogram:
    """The hash as HGETALL returns it (bytes), as cumulative buckets."""
    values = {(k.decode() if isinstance(k, bytes) else k): v for k, v in (raw or {}).items()}
    cumulative, buckets = 0, []
    for field in _FIELDS:
        cumulative += int(values.get(field, 0))
        buckets.append((field, cumulative))
    return RoutedHistogram(buckets=buckets, count=cumulative, sum=float(values.get("sum", 0.0)))

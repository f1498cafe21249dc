"""The Prometheus exposition behind /metrics (prometheus-client).

Two kinds of figures:
- the pipeline's state (`PipelineCollector`), computed at each scrape from PostgreSQL
  and Redis by apps/ops/selectors.py: queue depths, push backlog, poll health, replies
  in flight, the unrouted backlog, and the arrival -> routed latency histogram
  (cxinbox_mention_routed_seconds). Every web process computes the same figures, so any
  one of them may answer the scrape.
- what this web process saw (`request_observe`, from apps/ops/middleware.py): webhook
  accept latency and responses by status class. These live in process memory, so with
  several gunicorn/uvicorn workers one scrape sees one worker's share, unless
  PROMETHEUS_MULTIPROC_DIR names a directory shared by the workers (prometheus-client's
  multiprocess mode: each process writes its samples there and the scrape sums them).
  docs/operations.md, "Metrics".

The arrival -> routed histogram is recorded by routing itself, in the Celery workers:
each routing transaction takes its messages' markers (routing.UnroutedMessage, which
keep when each message reached us: the webhook's accept, the poll's fetch) and, once
committed, adds their latencies to per-bucket counters in Redis, one pipelined round
trip per batch (apps/routing/routed_latency.py). Redis, not process memory: the workers
that route and the web processes that answer the scrape are different processes, maybe
on different hosts. What still waits is the unrouted backlog (cxinbox_messages_unrouted*)."""
from __future__ import annotations

import logging
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from apps.connectors.models import Provider

from . import selectors

log = logging.getLogger(__name__)

# registry=None: registered per scrape below, never in the library's global registry
WEBHOOK_SECONDS = Histogram(
    "cxinbox_webhook_accept_seconds",
    "Time to answer a push delivery on /hooks/<provider>/<account>/ (in this web tier), by provider and status class.",
    ["provider", "status"], registry=None,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
HTTP_RESPONSES = Counter(
    "cxinbox_http_responses", "HTTP responses of the web tier by status class (1xx-5xx).",
    ["status"], registry=None)
_PROVIDERS = frozenset(Provider.values)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def request_observe(*, path: str, status: int, seconds: float) -> None:
    status_class = f"{min(max(status // 100, 1), 5)}xx"
    HTTP_RESPONSES.labels(status_class).inc()
    if path.startswith("/hooks/"):
        provider = path.split("/", 3)[2]
        # bounded label values: an unknown provider in the URL (a scan) is "other"
        WEBHOOK_SECONDS.labels(provider if provider in _PROVIDERS else "other", status_class).observe(seconds)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class PipelineCollector:
    """Reads the pipeline's state when Prometheus scrapes (no state of its own). A
    source that is down (database or Redis) is reported by cxinbox_metrics_source_up 0;
    the other source's figures are still given."""

    def collect(self):
        up = _gauge("cxinbox_metrics_source_up", "1 if this scrape could read the source (database, redis).",
                    ["source"])
        took = _gauge("cxinbox_metrics_collect_seconds", "Time this scrape spent reading the source.", ["source"])
        for source, read in (("database", self._database), ("redis", self._redis)):
            started = time.perf_counter()
            try:
                yield from read()
                ok = 1
            except Exception:  # noqa: BLE001 - a scrape reports a source down, it does not fail
                log.warning("metrics: reading %s failed", source, exc_info=True)
                ok = 0
            up.add_metric([source], ok)
            took.add_metric([source], time.perf_counter() - started)
        yield up
        yield took

    def _database(self):
        labels = ["account", "provider", "handle"]
        pending = _gauge("cxinbox_push_deliveries_pending",
                         "Push deliveries accepted (2xx) and not ingested yet, per account.", labels)
        pending_age = _gauge("cxinbox_push_deliveries_pending_oldest_age_seconds",
                             "Age of the account's oldest pending push delivery (0: none).", labels)
        failed = _gauge("cxinbox_push_deliveries_failed",
                        "Push deliveries whose ingest failed for good (they wait for an operator).", labels)
        lag = _gauge("cxinbox_account_poll_lag_seconds",
                     "Polled accounts: seconds since the last successful poll (since added, if never).", labels)
        push_age = _gauge("cxinbox_account_last_push_age_seconds",
                          "Seconds since the account's last accepted push delivery (a quiet account is not late).",
                          labels)
        errors = _gauge("cxinbox_account_consecutive_errors", "Polled accounts: failed polls in a row.", labels)
        behind = _gauge("cxinbox_account_falling_behind",
                        "Polled accounts: 1 when the last successful poll is older than POLL_FALLING_BEHIND_SECONDS.",
                        labels)
        limited = _gauge("cxinbox_account_rate_limited", "1 while the network's rate limit holds the account.",
                         labels)
        for a in selectors.accounts_watch():
            values = [str(a.id), a.provider, a.handle]
            pending.add_metric(values, a.push_pending)
            pending_age.add_metric(values, a.push_pending_oldest_age_seconds)
            failed.add_metric(values, a.push_failed)
            limited.add_metric(values, int(a.rate_limited))
            if a.last_push_age_seconds is not None:
                push_age.add_metric(values, a.last_push_age_seconds)
            if a.polls:
                lag.add_metric(values, a.poll_lag_seconds)
                errors.add_metric(values, a.consecutive_errors)
                behind.add_metric(values, int(a.falling_behind))
        yield from (pending, pending_age, failed, lag, push_age, errors, behind, limited)

        replies = selectors.replies_watch()
        count = _gauge("cxinbox_replies", "Agent replies not sent yet, by status (queued, sending).", ["status"])
        age = _gauge("cxinbox_replies_oldest_age_seconds",
                     "Age of the oldest reply in the status since it was written (0: none; a reply may wait "
                     "for a rate limit's reset, up to 15 min).", ["status"])
        for status, (n, oldest) in sorted(replies.in_flight.items()):
            count.add_metric([status], n)
            age.add_metric([status], oldest)
        yield count
        yield age
        recent = _gauge("cxinbox_replies_failed_last_hour", "Replies that ended failed in the last hour.")
        recent.add_metric([], replies.failed_recent)
        yield recent

        n, oldest = selectors.unrouted_watch()
        unrouted = _gauge("cxinbox_messages_unrouted",
                          "Customer messages stored and not routed yet (routing.UnroutedMessage markers).")
        unrouted.add_metric([], n)
        unrouted_age = _gauge("cxinbox_messages_unrouted_oldest_age_seconds",
                              "Seconds since the oldest unrouted customer message was stored (0: none): "
                              "arrival -> routed, for what is still waiting.")
        unrouted_age.add_metric([], oldest)
        yield unrouted
        yield unrouted_age

        uncounted = _gauge("cxinbox_reports_uncounted_oldest_age_seconds",
                           "Seconds since the oldest customer message the reports have not counted was stored "
                           "(0: none): how far the reports are behind the inbox.")
        uncounted.add_metric([], selectors.reports_uncounted_age())
        yield uncounted

    def _redis(self):
        broker = selectors.broker_watch()
        if broker is None:  # embedded broker (no REDIS_URL): no queue figures
            return
        depth = _gauge("cxinbox_celery_queue_length", "Tasks waiting in a Celery queue (all priorities).", ["queue"])
        for queue, n in broker.queues.items():
            depth.add_metric([queue], n)
        yield depth
        unacked = _gauge("cxinbox_celery_unacked_tasks",
                         "Tasks taken by a worker and not acknowledged yet (running or reserved).")
        unacked.add_metric([], broker.unacked)
        yield unacked
        pending = _gauge("cxinbox_routing_pending_batches", "Ingest batches waiting on routing's pending list.")
        pending.add_metric([], broker.routing_pending)
        yield pending
        routed = HistogramMetricFamily(
            "cxinbox_mention_routed_seconds",
            "Customer messages from arrival (webhook accepted, poll fetched) to routed (queue, priority, SLA and "
            "assignee committed), every routing worker's; the same figures from every web process.")
        routed.add_metric([], buckets=broker.routed.buckets, sum_value=broker.routed.sum)
        yield routed


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type, from a registry made for it."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector())
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # every worker's request figures, summed
    else:
        registry.register(WEBHOOK_SECONDS)
        registry.register(HTTP_RESPONSES)
    return generate_latest(registry), CONTENT_TYPE_LATEST

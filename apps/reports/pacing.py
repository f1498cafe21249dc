"""The reports give way to the inbox under a burst.

Counting for the reports (reports.apply_rollups) costs about as much as storing and routing a
mention, much of it in PostgreSQL, where the reports worker's `nice` does not reach. While
mentions wait to be stored or routed, a run of the applier only makes them wait longer, so it
steps aside and tries again shortly; the reports catch up once the inbox has. It never waits
for longer than REPORTS_YIELD_MAX_SECONDS behind: on a box saturated for good the reports
still count (and /metrics shows how far behind they are). docs/operations.md, "Reports under a
burst"; measured on the edge bench: docs/performance-history.md, 2026-12-07 third session."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.core.task_queue import task_named
from apps.ingest.selectors import inbox_behind

from .selectors import inbound_uncounted_oldest_at

log = logging.getLogger(__name__)


def rollups_wait_for_inbox() -> bool:
    """True when this run of the applier steps aside (and one later run is queued)."""
    backlog = settings.REPORTS_YIELD_BACKLOG_SECONDS
    if backlog <= 0 or not inbox_behind(seconds=backlog):
        return False
    now = timezone.now()
    oldest = inbound_uncounted_oldest_at()
    behind = (now - oldest).total_seconds() if oldest else 0.0
    if behind >= settings.REPORTS_YIELD_MAX_SECONDS:
        return False
    retry = max(1, settings.REPORTS_YIELD_RETRY_SECONDS)  # 0 would re-run it at once, over and over
    if cache.add("reports:yield-retry", 1, timeout=retry):  # one later run, however many stepped aside
        task_named("reports.apply_rollups").apply_async(countdown=retry)
    log.info("reports wait for the inbox (mentions waiting over %s s; the reports %.0f s behind)", backlog, behind)
    return True

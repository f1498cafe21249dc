"""A cache of built reports, correct by construction.

The key is the report's name, every field of its `ReportParams` (range, time
zone, filters and `show_people`, the role's visibility: a marketing user's
masked report never shares an entry with a supervisor's), and the data
version: `RollupLock.applied_total` (grows at each apply, so new rollups make
new keys), `RollupLock.cache_epoch` (a random token per lock row, renewed by
`rollups_rebuild`: a restored or rebuilt database never meets old entries) and
the newest `SpikeAlert` id (the marketing report lists alerts, which
`spikes_detect` writes after the apply). A report is a function of those alone,
except names (team, queue, agent, customer) renamed meanwhile: entries expire
after `REPORTS_CACHE_SECONDS` (default 600) for that.

The version is read before the report is built: a report computed while an
apply commits is stored under the older version (never newer data missing
under a newer key).

`reports_warm` (task `reports.warm_cache`, queue `reports`, after each apply
that applied something) builds what the report pages open by default: the last
7 local days, unfiltered in each zone a team or a report user has, and with
`team=` in each team's zone, for supervisors (and masked for marketing users'
zones), so the first person to open a page usually hits a warm entry."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import Role, Team, User

from .models import RollupLock, SpikeAlert
from .params import previous_period
from .selectors import REPORTS, ReportParams, report_build

log = logging.getLogger(__name__)

KEY_PREFIX = "reports:built:v1"
DEFAULT_RANGE_DAYS = 7  # the pages' and the API's default: end = today, start = end - 6 days


def _timeout() -> int:
    return int(getattr(settings, "REPORTS_CACHE_SECONDS", 600))


def enabled() -> bool:
    return bool(getattr(settings, "REPORTS_CACHE", True))


def data_version() -> str:
    """What a built report depends on besides its parameters (see the module doc)."""
    lock = RollupLock.objects.filter(pk=1).values_list("applied_total", "cache_epoch").first()
    applied, epoch = lock if lock else (0, "none")
    last_alert = SpikeAlert.objects.aggregate(m=Max("id"))["m"] or 0
    return f"{epoch}:{applied}:{last_alert}"


def _normalised(params: ReportParams) -> dict:
    """Every field of the parameters, so a field added later is in the key too."""
    out = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, ZoneInfo):
            value = value.key
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[f.name] = value
    return out


def cache_key(name: str, params: ReportParams, version: str) -> str:
    raw = json.dumps([name, _normalised(params), version], sort_keys=True, default=str)
    return f"{KEY_PREFIX}:{name}:{hashlib.sha256(raw.encode()).hexdigest()}"


def report_cached(*, name: str, params: ReportParams) -> dict:
    """The built report from the cache, else built now (and stored)."""
    if not enabled():
        return report_build(name=name, params=params)
    version = data_version()  # before building: see the module doc
    key = cache_key(name, params, version)
    try:
        hit = cache.get(key)
    except Exception:  # a cache outage must not take the reports down
        log.warning("report cache read failed", exc_info=True)
        hit = None
    if hit is not None:
        return hit
    report = report_build(name=name, params=params)
    _store(key, report)
    return report


def _store(key: str, report: dict) -> None:
    try:
        cache.set(key, report, timeout=_timeout())
    except Exception:
        log.warning("report cache write failed", exc_info=True)


# --- pre-computing what the pages open by default ------------------------------

def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo((name or "UTC").strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def default_params(tz: ZoneInfo, *, team_id: int = 0, show_people: bool = True,
                   now: dt.datetime | None = None) -> ReportParams:
    """What `params_from_query` gives for a page opened without a range."""
    end = (now or timezone.now()).astimezone(tz).date()
    return ReportParams(start=end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), end=end, tz=tz,
                        team_id=team_id, show_people=show_people)


def warm_targets(now: dt.datetime | None = None) -> list[tuple[str, ReportParams]]:
    """(report, params) pairs: for supervisors, unfiltered in each team's and
    report user's zone, and each team filtered in its own zone; for marketing
    users (masked), unfiltered in their zones."""
    names = getattr(settings, "REPORTS_CACHE_WARM_REPORTS", ("service", "experience", "marketing"))
    teams = [(pk, _zone(tz)) for pk, tz in Team.objects.values_list("pk", "time_zone")]
    users = User.objects.filter(is_active=True, role__in=[Role.SUPERVISOR, Role.ADMIN, Role.MARKETING])
    people_zones, masked_zones = {"UTC"}, set()
    for tz, role in users.values_list("time_zone", "role").distinct():
        (masked_zones if role == Role.MARKETING else people_zones).add(tz or "UTC")
    people_zones |= {tz.key for _, tz in teams if tz}
    targets: list[ReportParams] = []
    for zone in sorted(people_zones):
        if (tz := _zone(zone)):
            targets.append(default_params(tz, now=now))
    for pk, tz in teams:
        if tz:
            targets.append(default_params(tz, team_id=pk, now=now))
    for zone in sorted(masked_zones):
        if (tz := _zone(zone)):
            targets.append(default_params(tz, show_people=False, now=now))
    # and the period before each: the page's KPI cards compare with it
    targets += [before for p in targets if (before := previous_period(p)) is not None]
    return [(name, p) for p in targets for name in names if name in REPORTS]


def reports_warm(*, now: dt.datetime | None = None, max_seconds: float | None = None) -> dict:
    """Builds the default reports for the current data version; skips entries
    already there. Stops after `max_seconds` (REPORTS_CACHE_WARM_MAX_SECONDS,
    default 240): the next apply's warm continues."""
    if not enabled():
        return {"built": 0, "present": 0, "skipped": 0}
    budget = max_seconds if max_seconds is not None else getattr(settings, "REPORTS_CACHE_WARM_MAX_SECONDS", 240)
    started = time.monotonic()
    version = data_version()
    built = present = skipped = 0
    for name, params in warm_targets(now):
        if time.monotonic() - started > budget or data_version() != version:
            skipped += 1  # out of time, or an apply committed meanwhile: the next warm does it
            continue
        key = cache_key(name, params, version)
        if cache.get(key) is not None:
            present += 1
            continue
        _store(key, report_build(name=name, params=params))
        built += 1
    return {"built": built, "present": present, "skipped": skipped, "version": version,
            "seconds": round(time.monotonic() - started, 3)}

"""Parses a report's query string: date range, time zone and filters."""
from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.accounts.models import Role
from apps.core.errors import DomainError
from apps.core.params import date_param, int_param, zone_param

from .selectors import ReportParams

MAX_DAYS = 366


def _int(query, name) -> int:
    # An id: a whole number within bigint (99999999999999999999 was a 500 at the query).
    return int_param(name, query.get(name), minimum=0) or 0


def params_from_query(query, user) -> ReportParams:
    tz_name = (query.get("tz") or getattr(user, "time_zone", "") or "UTC").strip()
    try:
        tz = zone_param("tz", tz_name)
    except DomainError:
        raise DomainError(f"Unknown time zone {tz_name[:60]!r}.") from None
    today = timezone.now().astimezone(tz).date()
    # date_param refuses an impossible date and one outside 1970-2200: ?end=9999-12-31
    # overflowed a day later (the next local midnight), a 500 on every report.
    end = date_param("end", query.get("end")) or today
    start = date_param("start", query.get("start")) or end - dt.timedelta(days=6)
    if start > end:
        raise DomainError("The start date is after the end date.")
    if (end - start).days >= MAX_DAYS:
        raise DomainError(f"Pick at most {MAX_DAYS} days.")
    marketing = getattr(user, "role", "") == Role.MARKETING and not user.is_superuser
    return ReportParams(start=start, end=end, tz=tz, channel=(query.get("channel") or "").strip()[:32],
                        account_id=_int(query, "account"), queue_id=_int(query, "queue"),
                        team_id=_int(query, "team"), agent_id=0 if marketing else _int(query, "agent"),
                        show_people=not marketing)

"""Parses a report's query string: date range, time zone and filters."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from apps.accounts.models import Role
from apps.core.errors import DomainError

from .selectors import ReportParams

MAX_DAYS = 366


def _int(query, name) -> int:
    raw = (query.get(name) or "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"{name} must be a number.") from None


def params_from_query(query, user) -> ReportParams:
    tz_name = (query.get("tz") or getattr(user, "time_zone", "") or "UTC").strip()
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(f"Unknown time zone {tz_name!r}.") from None
    today = timezone.now().astimezone(tz).date()
    try:
        end = dt.date.fromisoformat(query["end"]) if query.get("end") else today
        start = dt.date.fromisoformat(query["start"]) if query.get("start") else end - dt.timedelta(days=6)
    except ValueError:
        raise DomainError("Dates are YYYY-MM-DD.") from None
    if start > end:
        raise DomainError("The start date is after the end date.")
    if (end - start).days >= MAX_DAYS:
        raise DomainError(f"Pick at most {MAX_DAYS} days.")
    marketing = getattr(user, "role", "") == Role.MARKETING and not user.is_superuser
    return ReportParams(start=start, end=end, tz=tz, channel=(query.get("channel") or "").strip()[:32],
                        account_id=_int(query, "account"), queue_id=_int(query, "queue"),
                        team_id=_int(query, "team"), agent_id=0 if marketing else _int(query, "agent"),
                        show_people=not marketing)

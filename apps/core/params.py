"""Query-string values parsed once, the same way everywhere: a value a client got
wrong (an impossible date, a year PostgreSQL or Python cannot hold, a NUL, a
number past bigint) raises BadParameter, a DomainError: the API answers
400 {"detail": ...} and a page shows the message or ignores the value
(docs/api.md, "Bad parameters")."""
from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, available_timezones

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .errors import DomainError

# Times a filter may name. Far enough for any real data; near enough that a day
# added or a zone applied never leaves what Python and PostgreSQL can hold.
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2200, 12, 31)
BIGINT_MAX = 2**63 - 1


class BadParameter(DomainError):
    """A query parameter the client got wrong (400)."""


def _clean(name: str, value) -> str:
    text = str(value if value is not None else "").strip()
    if "\x00" in text:
        raise BadParameter(f"{name}: NUL characters are not allowed.")
    return text


def text_param(name: str, value, *, max_length: int = 500) -> str:
    text = _clean(name, value)
    if len(text) > max_length:
        raise BadParameter(f"{name}: at most {max_length} characters.")
    return text


def date_param(name: str, value) -> dt.date | None:
    """YYYY-MM-DD between EARLIEST and LATEST; '' -> None."""
    text = _clean(name, value)
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadParameter(f"{name}: not a date (YYYY-MM-DD): {text[:40]!r}.") from None
    _in_range(name, day)
    return day


def when_param(name: str, value, *, end: bool = False) -> dt.datetime | None:
    """A date or an ISO 8601 time, made aware (naive: the current zone). A date
    with end=True means the end of that day (the next midnight). '' -> None."""
    text = _clean(name, value)
    if not text:
        return None
    try:
        moment = parse_datetime(text)
        day = parse_date(text) if moment is None else None
    except ValueError:  # well formed but no such day or hour (2024-02-31)
        raise BadParameter(f"{name}: no such date or time: {text[:40]!r}.") from None
    if moment is None and day is None:
        raise BadParameter(f"{name}: not a date or ISO 8601 time: {text[:40]!r}.")
    _in_range(name, day or moment.date())
    if moment is None:
        moment = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def int_param(name: str, value, *, minimum: int = 0, maximum: int = BIGINT_MAX) -> int | None:
    """A whole number within [minimum, maximum]; '' -> None."""
    text = _clean(name, value)
    if not text:
        return None
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 20:
        raise BadParameter(f"{name}: not a whole number: {text[:40]!r}.")
    number = int(text)
    if not minimum <= number <= maximum:
        raise BadParameter(f"{name}: must be between {minimum} and {maximum}.")
    return number


def zone_param(name: str, value) -> ZoneInfo:
    """An IANA time zone name. ZoneInfo itself raises OSError for a long name and
    UnicodeEncodeError for a surrogate (500s): only the known names get that far."""
    text = _clean(name, value)
    if text not in _zone_names():
        raise BadParameter(f"{name}: unknown time zone {text[:60]!r}.")
    return ZoneInfo(text)


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _in_range(name: str, day: dt.date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise BadParameter(f"{name}: dates run from {EARLIEST} to {LATEST}.")


__all__ = ["BadParameter", "text_param", "date_param", "when_param", "int_param", "zone_param", "EARLIEST",
           "LATEST"]

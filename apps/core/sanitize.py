"""What strangers send, made safe to store and show (docs/connectors.md,
"Hostile input at the edge"). Pure functions: no models, no settings.

- text: NUL and lone UTF-16 surrogates become U+FFFD (PostgreSQL stores
  neither, in text or JSON), and a text can be capped with a visible marker;
- time: a claimed time outside a sane window is not believed (PostgreSQL
  stores year 10000 or BC, which psycopg then cannot read back);
- urls: only absolute http(s) URLs are kept (no javascript:, data:, ...);
- JSON-shaped data: NaN and Infinity (which PostgreSQL's json refuses) become null."""
from __future__ import annotations

import datetime as dt
import math
import re
from urllib.parse import urlsplit

UTC = dt.timezone.utc
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Control characters a browser strips from a URL (so "java\tscript:" would pass a scheme check).
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
# Before this a network's claimed time is not believed: no social network (nor
# plausible email) is older, and year-1 times with a +14:00 offset are BC in UTC.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
# Clocks drift and time zones are mislabelled, but not by more than this.
FUTURE_SLACK = dt.timedelta(days=1)
# Nesting deeper than this is no network's payload, and recursive code (json,
# the storable copy) would hit Python's recursion limit on it.
MAX_DEPTH = 64


def text_clean(value: str) -> str:
    """NUL and lone surrogates -> U+FFFD; anything else kept as sent."""
    return _UNSTORABLE.sub(REPLACEMENT, value)


def data_clean(value, limit: int | None = None):
    """text_clean through dicts and lists (JSON-shaped data), keys included; with
    `limit`, every string value also text_cap'ped. One pass: raw payloads can be large."""
    if isinstance(value, str):
        value = _UNSTORABLE.sub(REPLACEMENT, value)
        return text_cap(value, limit) if limit is not None else value
    if isinstance(value, dict):
        return {_UNSTORABLE.sub(REPLACEMENT, k) if isinstance(k, str) else k: data_clean(v, limit)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [data_clean(v, limit) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN / Infinity: Python's json reads them, PostgreSQL's json refuses them
    return value


def text_cap(value: str, limit: int) -> str:
    """At most `limit` characters plus a marker saying how much was cut."""
    if len(value) <= limit:
        return value
    marker = f"\n\n[… truncated: {len(value) - limit:,} more characters not shown]"
    return value[:limit] + marker


def depth_exceeds(value, limit: int = MAX_DEPTH) -> bool:
    """True when JSON-shaped data nests deeper than `limit` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def time_sane(value: dt.datetime | None, *, arrival: dt.datetime) -> dt.datetime:
    """The claimed time in UTC when it is believable, else the arrival time:
    none, naive-and-absurd, before EARLIEST, or more than FUTURE_SLACK ahead."""
    if not isinstance(value, dt.datetime):
        return arrival
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)  # 9999-12-31T23:59:59-12:00 overflows here
    except (OverflowError, ValueError):
        return arrival
    if value < EARLIEST or value > arrival + FUTURE_SLACK:
        return arrival
    return value


def http_url(value) -> str:
    """The URL when it is absolute http(s) with a host, else "" (javascript:, data:,
    relative, protocol-relative, or with control characters a browser strips)."""
    if not isinstance(value, str) or not value:
        return ""
    url = value.strip()
    if _URL_CONTROL.search(url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    return url

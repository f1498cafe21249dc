"""How the report pages and the digest write a figure for a person: durations in words
("4 min", "2 h 10 min"), ratios as percentages, sentiment points with their sign. Pure."""
from __future__ import annotations

DURATION_PREFIXES = ("first_response", "reply", "resolution", "handle_time")
DURATION_COLUMNS = ("first_response_seconds", "handle_time_total")
RATE_COLUMNS = ("resolution_rate", "reopen_rate", "sla_compliance")
POINT_COLUMNS = ("csat", "net_sentiment", "nps")  # already in percent or points
COMPOUND_COLUMNS = ("first", "last", "shift", "last_sentiment", "mean_compound", "mean_shift")
DASH = "–"


def duration(seconds: float | None) -> str:
    """45 s · 4 min 30 s (under 10 min) · 25 min · 2 h 10 min · 3 d 4 h."""
    if seconds is None:
        return DASH
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    if s >= 30:  # past 10 minutes, to the nearest minute
        minutes += 1
    if minutes < 60:
        return f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


def percent(ratio: float | None) -> str:
    if ratio is None:
        return DASH
    return trim(f"{100 * ratio:.1f}") + "%"


def points(value: float | None, signed: bool = True) -> str:
    if value is None:
        return DASH
    text = trim(f"{value:+.1f}" if signed else f"{value:.1f}")
    return text.replace("-", "−")


def number(value) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, float):
        return trim(f"{value:,.2f}")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def trim(text: str) -> str:
    return text[:-2] if text.endswith(".0") else text


def is_duration(column: str) -> bool:
    return column in DURATION_COLUMNS or (column.startswith(DURATION_PREFIXES)
                                          and column.endswith(("_mean", "_median", "_p90")))


def cell(value, column: str = "") -> str:
    """A table cell: durations in words, rates as percent, sentiment with its sign."""
    if value is None or value == "":
        return DASH
    column = column or ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if is_duration(column):
            return duration(value)
        if column.endswith("_rate") or column in RATE_COLUMNS:
            return percent(value)
        if column == "csat":  # a percentage already; the label says so
            return trim(f"{value:.1f}")
        if column in ("net_sentiment", "nps"):
            return points(value)
        if column in COMPOUND_COLUMNS:
            return f"{value:+.2f}".replace("-", "−")
        return number(value)
    return str(value)

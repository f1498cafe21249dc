from django import template

register = template.Library()

DURATION_PREFIXES = ("first_response", "reply", "resolution", "first_response_seconds", "handle_time")


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {m:02d}m"
    days, h = divmod(hours, 24)
    return f"{days}d {h}h"


@register.filter
def get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def cell(value, column: str = ""):
    """A table cell: durations as 1h 05m, rates as percent, others as is."""
    if value is None or value == "":
        return "–"
    column = column or ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if column.endswith(("_mean", "_median", "_p90")) and column.startswith(DURATION_PREFIXES) \
                or column in ("first_response_seconds", "handle_time_total"):
            return duration(value)
        if column.endswith("_rate") or column in ("resolution_rate", "reopen_rate", "sla_compliance"):
            return f"{100 * value:.1f}%"
        if column in ("csat", "net_sentiment", "nps"):
            return f"{value:.1f}"
        if isinstance(value, float):
            return f"{value:.2f}"
    return value


@register.filter
def label(column: str) -> str:
    return column.replace("_", " ")

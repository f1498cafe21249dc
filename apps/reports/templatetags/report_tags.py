from django import template

from apps.reports import formatting
from apps.reports.tables import column_label

register = template.Library()


def duration(seconds: float) -> str:
    return formatting.duration(seconds)


@register.filter
def get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def cell(value, column: str = ""):
    """A table cell: durations as "2 h 10 min", rates as percent, others as is."""
    return formatting.cell(value, column)


@register.filter
def label(column: str) -> str:
    return column_label(column)


@register.filter
def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

"""Turns a report into flat tables (the page's tables, the CSV export)."""
from __future__ import annotations

import csv
import io

TABLES = {
    "service": ["totals", "by_day", "by_channel", "by_queue", "by_team", "by_agent", "backlog"],
    "experience": ["totals", "by_channel", "sentiment_by_day", "sentiment_shift.most_improved",
                   "sentiment_shift.most_worsened", "customers_at_risk"],
    "marketing": ["totals", "alerts", "by_day", "by_channel_day", "by_account", "by_account_day", "top_positive",
                  "top_negative", "topics", "topics_by_day", "hashtags", "hashtags_by_day", "keywords",
                  "keywords_by_day"],
    "gap": ["totals", "by_channel", "by_queue", "by_tag", "by_topic", "met_but_bad", "missed_but_good"],
}


def _flatten(row: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "_"))
        elif isinstance(value, list):
            if value and isinstance(value[0], dict):
                out[name] = " | ".join(str(v.get("text", v)) for v in value)
            else:
                out[name] = "; ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def table(report: dict, name: str) -> tuple[list[str], list[dict]]:
    data = report
    for part in name.split("."):
        data = data.get(part, []) if isinstance(data, dict) else []
    rows = [data] if isinstance(data, dict) else list(data)
    flat = [_flatten(r) for r in rows]
    columns: list[str] = []
    for r in flat:
        for c in r:
            if c not in columns:
                columns.append(c)
    return columns, flat


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if value is None:
        return ""
    text = str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def to_csv(report: dict, table_name: str | None = None) -> str:
    names = [table_name] if table_name else TABLES[report["report"]]
    buf = io.StringIO()
    writer = csv.writer(buf)
    for i, name in enumerate(names):
        columns, rows = table(report, name)
        if not table_name:
            if i:
                writer.writerow([])
            writer.writerow([f"# {name}"])
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()

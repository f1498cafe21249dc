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


# The definitions table (the first section of a full export, or ?table=definitions): each
# definition the report states, with the CSV columns it explains.
DEFINITIONS_TABLE = "definitions"
DEFINITION_COLUMNS = {
    "first_response_conversation": "first_response_conversation_*", "resolution_full": "resolution_full_*",
    "cohort_resolution_rate": "cohort_opened; cohort_resolved; cohort_resolution_rate",
    "first_response": "first_response_* (per cycle)", "reply": "reply_*", "resolution": "resolution_* (per cycle)",
    "resolution_rate": "resolution_rate; opened; reopened; dismissed; resolved", "reopen_rate": "reopen_rate",
    "agents": "by_agent; handled; handled_resolved; handled_resolution_rate",
    "business_hours": "*_business_*", "sla": "sla_met; sla_breached; sla_compliance",
    "volume": "volume_in; volume_out; volume_out_bot", "backlog": "backlog", "handle_time": "handle_time_*",
    "csat": "csat; csat_answers; csat_sent; csat_response_rate", "ces": "ces_*", "nps": "nps; nps_*",
    "sentiment": "positive; negative; neutral; net_sentiment; mean_compound", "repeat": "repeat_contact*",
}


def table_known(report_name: str, table_name: str) -> bool:
    return table_name == DEFINITIONS_TABLE or table_name in TABLES[report_name]


def _definitions(report: dict) -> tuple[list[str], list[dict]]:
    rows = [{"definition": key, "columns": DEFINITION_COLUMNS.get(key, ""), "meaning": text}
            for key, text in (report.get("definitions") or {}).items()]
    return ["definition", "columns", "meaning"], rows


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
    if name == DEFINITIONS_TABLE:
        return _definitions(report)
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
    # a full export opens with what its figures mean (a table like the others: "# definitions")
    names = [table_name] if table_name else [DEFINITIONS_TABLE, *TABLES[report["report"]]]
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

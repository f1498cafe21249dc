"""The report pages' tables: which tables a page shows open and which it folds, the
columns a person needs by default (the rest behind "All columns"), and a human label for
every column ("First response median", not first_response_median). The CSV export keeps
the raw column names (export.py): a spreadsheet or a script reads those."""
from __future__ import annotations

from . import export

# Whole names first; then a known prefix + a statistic (first_response_business_p90).
LABELS = {
    "day": "Day", "channel": "Channel", "channel_key": "Channel code", "queue": "Queue", "queue_id": "Queue ID",
    "team": "Team", "team_id": "Team ID", "agent": "Agent", "agent_id": "Agent ID", "account": "Account",
    "account_id": "Account ID", "name": "Name", "term": "Term", "count": "Mentions", "customer": "Customer",
    "customer_id": "Customer ID", "conversation_id": "Conversation", "link": "Open", "kind": "Kind",
    "hour": "Hour", "value": "Value", "baseline": "Day before", "message": "Alert", "id": "ID",
    "volume_in": "Messages in", "volume_out": "Replies sent", "volume_out_bot": "Automatic replies",
    "opened": "New conversations", "reopened": "Reopened", "dismissed": "Dismissed (spam, ignored)",
    "resolved": "Resolved", "resolution_rate": "Resolutions / cycles started", "reopen_rate": "Reopen rate",
    "cohort_opened": "Opened (cohort)", "cohort_resolved": "Of those, resolved now",
    "cohort_resolution_rate": "Resolution rate", "handled": "Cycles handled",
    "handled_resolved": "Handled and resolved", "handled_resolution_rate": "Resolution rate (cycles handled)",
    "first_response_conversation": "First response time", "resolution_full": "Full resolution time",
    "first_response": "First response per cycle", "resolution": "Resolution time per cycle",
    "agents": "Per-agent attribution",
    "sla_met": "SLA targets met", "sla_breached": "SLA targets missed", "sla_compliance": "SLA compliance",
    "handle_time_total": "Handle time, total", "backlog": "Open at end of day",
    "csat": "CSAT (% satisfied)", "csat_answers": "CSAT answers", "csat_sent": "CSAT surveys sent",
    "csat_response_rate": "CSAT response rate", "ces_mean": "CES mean (1–7)", "ces_median": "CES median (1–7)",
    "ces_answers": "CES answers", "ces_response_rate": "CES response rate", "nps": "NPS",
    "nps_answers": "NPS answers", "nps_response_rate": "NPS response rate", "repeat_contacts": "Repeat contacts",
    "repeat_contact_rate": "Repeat contact rate", "messages": "Messages", "scored": "Scored for sentiment",
    "positive": "Positive", "negative": "Negative", "neutral": "Neutral", "net_sentiment": "Net sentiment",
    "mean_compound": "Mean sentiment score", "examples": "Example posts", "first": "First sentiment",
    "last": "Last sentiment", "shift": "Shift", "reasons": "Why", "last_sentiment": "Last sentiment",
    "last_contact_at": "Last contact", "conversations": "Resolved conversations",
    "met_but_bad": "Target met, ended badly", "missed_but_good": "Target missed, ended well", "tags": "Tags",
    "topics": "Topics", "first_response_seconds": "First response", "resolved_at": "Resolved at",
}
PREFIXES = {"first_response_conversation_business": "First response time (business hours)",
            "first_response_conversation": "First response time",
            "resolution_full_business": "Full resolution time (business hours)",
            "resolution_full": "Full resolution time",
            "first_response_business": "First response per cycle (business hours)",
            "first_response": "First response per cycle",
            "reply_business": "Reply time (business hours)", "reply": "Reply time",
            "resolution": "Resolution time per cycle", "handle_time": "Handle time"}
STATISTICS = {"count": "count", "mean": "mean", "median": "median", "p90": "p90"}


def column_label(column: str) -> str:
    if column in LABELS:
        return LABELS[column]
    for prefix, text in PREFIXES.items():
        if column.startswith(prefix + "_") and column[len(prefix) + 1:] in STATISTICS:
            return f"{text} {STATISTICS[column[len(prefix) + 1:]]}"
    return column.replace("_", " ").capitalize()


TITLES = {
    "totals": "All figures for the period", "by_day": "By day", "by_channel": "By channel",
    "by_queue": "By queue", "by_team": "By team", "by_agent": "By agent", "backlog": "Open conversations by day",
    "sentiment_by_day": "Sentiment by day", "sentiment_shift.most_improved": "Conversations that improved most",
    "sentiment_shift.most_worsened": "Conversations that worsened most", "customers_at_risk": "Customers at risk",
    "alerts": "Spike alerts in the period", "by_channel_day": "By channel and day", "by_account": "By account",
    "by_account_day": "By account and day", "top_positive": "Most positive topics",
    "top_negative": "Most negative topics", "topics": "Topics", "topics_by_day": "Topics by day",
    "hashtags": "Hashtags", "hashtags_by_day": "Hashtags by day", "keywords": "Watched keywords",
    "keywords_by_day": "Watched keywords by day", "by_tag": "By tag", "by_topic": "By topic",
    "met_but_bad": "Handled within target, ended badly", "missed_but_good": "Missed a target, ended well",
}

_SERVICE_COLUMNS = ["volume_in", "volume_out", "resolved", "first_response_conversation_median",
                    "first_response_median", "reply_median", "resolution_full_median", "resolution_median",
                    "cohort_resolution_rate", "resolution_rate", "sla_compliance", "handle_time_median"]
_THEME_COLUMNS = ["term", "count", "positive", "negative", "net_sentiment", "examples"]
_SENTIMENT_COLUMNS = ["messages", "positive", "negative", "net_sentiment"]
# The columns shown by default (in this order); a table not listed shows all of its own.
COLUMNS = {
    ("service", "by_day"): ["day", *_SERVICE_COLUMNS],
    ("service", "by_channel"): ["channel", *_SERVICE_COLUMNS],
    ("service", "by_queue"): ["queue", *_SERVICE_COLUMNS],
    ("service", "by_team"): ["team", *_SERVICE_COLUMNS],
    ("service", "by_agent"): ["agent", "volume_out", "handled", "resolved", "handled_resolution_rate",
                              "first_response_conversation_median", "first_response_median", "reply_median",
                              "sla_breached", "sla_compliance", "handle_time_median", "handle_time_total"],
    ("experience", "by_channel"): ["channel", "csat", "csat_answers", "csat_response_rate", "ces_mean", "nps",
                                   "net_sentiment", "repeat_contact_rate"],
    ("experience", "sentiment_by_day"): ["day", *_SENTIMENT_COLUMNS],
    ("experience", "customers_at_risk"): ["customer", "channel", "reasons", "last_sentiment", "last_contact_at",
                                          "link"],
    ("marketing", "by_day"): ["day", *_SENTIMENT_COLUMNS],
    ("marketing", "by_channel_day"): ["channel", "day", *_SENTIMENT_COLUMNS],
    ("marketing", "by_account"): ["account", *_SENTIMENT_COLUMNS],
    ("marketing", "by_account_day"): ["account", "day", *_SENTIMENT_COLUMNS],
    ("marketing", "top_positive"): _THEME_COLUMNS, ("marketing", "top_negative"): _THEME_COLUMNS,
    ("marketing", "topics"): _THEME_COLUMNS, ("marketing", "hashtags"): _THEME_COLUMNS,
    ("marketing", "keywords"): _THEME_COLUMNS,
    ("marketing", "alerts"): ["hour", "channel", "message"],
    ("gap", "met_but_bad"): ["link", "channel", "queue", "topics", "first_response_seconds", "last_sentiment", "csat"],
    ("gap", "missed_but_good"): ["link", "channel", "queue", "topics", "first_response_seconds", "last_sentiment",
                                 "csat"],
}
# Shown open, in this order; the page's other tables are folded under "More tables".
OPEN = {
    "service": ["by_agent", "by_channel", "by_queue"],
    "experience": ["by_channel", "customers_at_risk"],
    "marketing": ["topics", "hashtags"],
    "gap": ["met_but_bad", "missed_but_good", "by_channel"],
}
# Highlighted above the tables on the marketing page; not repeated among them.
HIGHLIGHTED = {"marketing": ["top_positive", "top_negative"]}


def _labelled(columns: list[str]) -> list[dict]:
    return [{"key": c, "label": column_label(c)} for c in columns]


def table_for(report: dict, name: str, table: str) -> dict:
    columns, rows = export.table(report, table)
    if table == "totals":
        # one row of many figures: a list of label and value, not a 37-column row
        row = rows[0] if rows else {}
        return {"name": table, "caption": TITLES.get(table, column_label(table)), "vertical": True,
                "pairs": [{"key": c, "label": column_label(c), "value": row.get(c)} for c in columns]}
    if not rows:
        # an empty table still names its columns for the person who expected it
        default = COLUMNS.get((name, table), [])
    else:
        wanted = COLUMNS.get((name, table))
        default = [c for c in wanted if c in columns] if wanted else columns
    if not default:
        default = columns
    return {"name": table, "caption": TITLES.get(table, column_label(table)), "vertical": False, "rows": rows,
            "columns": _labelled(default), "all_columns": _labelled(columns),
            "more_columns": len(columns) > len(default)}


def tables_for(report: dict) -> tuple[list[dict], list[dict]]:
    """(open tables, folded tables) for the page."""
    name = report["report"]
    skip = set(HIGHLIGHTED.get(name, []))
    names = [t for t in export.TABLES[name] if t not in skip]
    first = [t for t in OPEN.get(name, []) if t in names]
    rest = [t for t in names if t not in first]
    return [table_for(report, name, t) for t in first], [table_for(report, name, t) for t in rest]

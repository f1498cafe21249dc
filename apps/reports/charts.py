"""Chart specs for the pages: {title, type, labels, datasets}. Chart.js draws them."""
from __future__ import annotations


def _minutes(v):
    return round(v / 60, 1) if v is not None else None


def _pct(v):
    return round(100 * v, 1) if v is not None else None


def _series(rows, key, fn=lambda v: v):
    out = []
    for r in rows:
        value = r
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out.append(fn(value))
    return out


def _by_term(rows: list[dict], key: str) -> list[dict]:
    series: dict[str, list] = {}
    for r in rows:
        series.setdefault(r["term"], []).append(r[key])
    return [{"label": term, "data": data} for term, data in series.items()]


def charts_for(report: dict) -> list[dict]:
    name = report["report"]
    if name == "service":
        days = [r["day"] for r in report["by_day"]]
        return [
            {"title": "Volume in and out", "type": "bar", "labels": days, "datasets": [
                {"label": "in", "data": _series(report["by_day"], "volume_in")},
                {"label": "out (human)", "data": _series(report["by_day"], "volume_out")}]},
            {"title": "First response time (minutes)", "type": "line", "labels": days, "datasets": [
                {"label": "median", "data": _series(report["by_day"], "first_response.median", _minutes)},
                {"label": "p90", "data": _series(report["by_day"], "first_response.p90", _minutes)},
                {"label": "mean", "data": _series(report["by_day"], "first_response.mean", _minutes)}]},
            {"title": "Reply time (minutes)", "type": "line", "labels": days, "datasets": [
                {"label": "median", "data": _series(report["by_day"], "reply.median", _minutes)},
                {"label": "p90", "data": _series(report["by_day"], "reply.p90", _minutes)}]},
            {"title": "Handle time per work session (minutes)", "type": "line", "labels": days, "datasets": [
                {"label": "median", "data": _series(report["by_day"], "handle_time.median", _minutes)},
                {"label": "p90", "data": _series(report["by_day"], "handle_time.p90", _minutes)},
                {"label": "mean", "data": _series(report["by_day"], "handle_time.mean", _minutes)}]},
            {"title": "Backlog at end of day", "type": "line", "labels": [r["day"] for r in report["backlog"]],
             "datasets": [{"label": "open cycles", "data": _series(report["backlog"], "backlog")}]},
            {"title": "Resolution rate and SLA compliance (%)", "type": "line", "labels": days, "datasets": [
                {"label": "resolution rate", "data": _series(report["by_day"], "resolution_rate", _pct)},
                {"label": "SLA compliance", "data": _series(report["by_day"], "sla_compliance", _pct)}]},
        ]
    if name == "experience":
        channels = [r["channel"] for r in report["by_channel"]]
        days = [r["day"] for r in report["sentiment_by_day"]]
        return [
            {"title": "CSAT by channel (% 4-5)", "type": "bar", "labels": channels,
             "datasets": [{"label": "CSAT", "data": _series(report["by_channel"], "csat")},
                          {"label": "response rate %", "data": _series(report["by_channel"], "csat_response_rate",
                                                                      _pct)}]},
            {"title": "Net sentiment by day", "type": "line", "labels": days,
             "datasets": [{"label": "net sentiment", "data": _series(report["sentiment_by_day"], "net_sentiment")}]},
            {"title": "Repeat contact rate by channel (%)", "type": "bar", "labels": channels,
             "datasets": [{"label": "repeat contact", "data": _series(report["by_channel"], "repeat_contact_rate",
                                                                     _pct)}]},
        ]
    if name == "marketing":
        days = [r["day"] for r in report["by_day"]]
        per_channel: dict[str, list] = {}
        for r in report["by_channel_day"]:
            per_channel.setdefault(r["channel"], []).append(r)
        return [
            {"title": "Inbound volume by channel", "type": "line", "labels": days,
             "datasets": [{"label": c, "data": _series(rows, "messages")} for c, rows in per_channel.items()]},
            {"title": "Net sentiment by channel", "type": "line", "labels": days,
             "datasets": [{"label": c, "data": _series(rows, "net_sentiment")} for c, rows in per_channel.items()]},
            {"title": "Top topics: messages per day", "type": "line", "labels": days,
             "datasets": _by_term(report["topics_by_day"], "messages")},
            {"title": "Top hashtags: net sentiment per day", "type": "line", "labels": days,
             "datasets": _by_term(report["hashtags_by_day"], "net_sentiment")},
            {"title": "Topics: volume and net sentiment", "type": "bar", "labels": [t["term"] for t in report["topics"]],
             "datasets": [{"label": "messages", "data": _series(report["topics"], "count")},
                          {"label": "net sentiment", "data": _series(report["topics"], "net_sentiment")}]},
        ]
    if name == "gap":
        rows = report["by_channel"]
        return [{"title": "Gap by channel", "type": "bar", "labels": [r["name"] for r in rows], "datasets": [
            {"label": "service met, experience bad", "data": _series(rows, "met_but_bad")},
            {"label": "service missed, experience good", "data": _series(rows, "missed_but_good")}]}]
    return []


def kpis_for(report: dict) -> list[tuple[str, object, str]]:
    """(label, value, column name for formatting) for the headline figures."""
    t = report["totals"]
    name = report["report"]
    if name == "service":
        return [("Volume in", t["volume_in"], ""), ("Volume out", t["volume_out"], ""),
                ("First response, median", t["first_response"]["median"], "first_response_median"),
                ("First response, p90", t["first_response"]["p90"], "first_response_p90"),
                ("First response, mean", t["first_response"]["mean"], "first_response_mean"),
                ("Reply time, median", t["reply"]["median"], "reply_median"),
                ("Reply time, p90", t["reply"]["p90"], "reply_p90"),
                ("Resolution time, median", t["resolution"]["median"], "resolution_median"),
                ("Resolution rate", t["resolution_rate"], "resolution_rate"),
                ("Reopen rate", t["reopen_rate"], "reopen_rate"),
                ("SLA compliance", t["sla_compliance"], "sla_compliance"),
                ("Handle time, median", t["handle_time"]["median"], "handle_time_median"),
                ("Handle time, p90", t["handle_time"]["p90"], "handle_time_p90"),
                ("Handle time, mean", t["handle_time"]["mean"], "handle_time_mean")]
    if name == "experience":
        shift = report["sentiment_shift"]
        return [("CSAT (% 4-5)", t["csat"], "csat"), ("CSAT response rate", t["csat_response_rate"], "x_rate"),
                ("CES mean (1-7)", t["ces_mean"], ""), ("NPS", t["nps"], "nps"),
                ("Net sentiment", t["net_sentiment"], "net_sentiment"),
                ("Repeat contact rate", t["repeat_contact_rate"], "x_rate"),
                ("Turned around", shift["turned_around"], ""), ("Worsened", shift["worsened"], ""),
                ("Customers at risk", len(report["customers_at_risk"]), "")]
    if name == "marketing":
        return [("Messages", t["messages"], ""), ("Scored", t["scored"], ""),
                ("Net sentiment", t["net_sentiment"], "net_sentiment"), ("Alerts", len(report["alerts"]), "")]
    return [("Resolved conversations", t["conversations"], ""),
            ("Service met, experience bad", t["met_but_bad"], ""),
            ("Service missed, experience good", t["missed_but_good"], "")]

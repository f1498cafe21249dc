"""The headline cards that open each report page: a few figures for the period, each with
a plain label and, where a comparison means something, its change against the previous
period of the same length ("▲ 12 (25%) on the previous 7 days"). Pure: it reads two built
reports (this period's and the previous one's) and what the view adds (work in progress)."""
from __future__ import annotations

from . import formatting

# kinds: how a value is written and how its change is: a count changes by a number and a
# percentage, a duration by a duration, a ratio by percentage points, a score by points.
COUNT, DURATION, RATIO, POINTS, SCORE = "count", "duration", "ratio", "points", "score"


def _get(report: dict | None, path: str):
    value = report
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(kind: str, value) -> str:
    if kind == DURATION:
        return formatting.duration(value)
    if kind == RATIO:
        return formatting.percent(value)
    if kind == POINTS:
        return formatting.points(value)
    if kind == SCORE:
        return formatting.number(round(value, 1) if isinstance(value, float) else value)
    return formatting.number(value)


def _change(kind: str, now, before, better: str | None) -> dict | None:
    """{"text", "direction": up|down|same, "tone": good|bad|""} or None (nothing to compare)."""
    if now is None or before is None:
        return None
    delta = now - before
    was = _text(kind, before)
    if abs(delta) < 1e-9:
        return {"text": "no change", "direction": "same", "tone": "", "was": was}
    direction = "up" if delta > 0 else "down"
    size = abs(delta)
    if kind == DURATION:
        text = formatting.duration(size)
    elif kind == RATIO:
        text = formatting.trim(f"{100 * size:.1f}") + " pts"
    elif kind == POINTS:
        text = formatting.trim(f"{size:.1f}") + " pts"
    elif kind == SCORE:
        text = formatting.trim(f"{size:.1f}")
    else:
        text = formatting.number(size)
        if before:
            text += f" ({formatting.trim(f'{100 * size / abs(before):.0f}')}%)"
    tone = ""
    if better:
        tone = "good" if (direction == "up") == (better == "higher") else "bad"
    return {"text": text, "direction": direction, "tone": tone, "was": was}


def card(label: str, kind: str, report: dict, previous: dict | None, path: str, *, better: str | None = None,
         note: str = "", compare: bool = True) -> dict:
    now = _get(report, path)
    before = _get(previous, path) if previous is not None and compare else None
    return {"label": label, "value": _text(kind, now), "raw": now, "note": note,
            "change": _change(kind, now, before, better) if compare else None}


def _backlog_end(report: dict | None):
    if not report or not report.get("backlog"):
        return None
    return report["backlog"][-1]["backlog"]


def kpis_for(report: dict, previous: dict | None, *, in_progress: dict | None = None) -> list[dict]:
    name = report["report"]
    if name == "service":
        t = report["totals"]
        handled = t["handle_time"]["count"]
        cards = [
            card("Messages received", COUNT, report, previous, "totals.volume_in"),
            card("Replies sent", COUNT, report, previous, "totals.volume_out"),
            card("First response time (median)", DURATION, report, previous,
                 "totals.first_response_conversation.median", better="lower",
                 note="once per conversation; per cycle: " + formatting.duration(t["first_response"]["median"])),
            card("Full resolution time (median)", DURATION, report, previous, "totals.resolution_full.median",
                 better="lower",
                 note="first contact to final resolve; per cycle: " + formatting.duration(t["resolution"]["median"])),
            card("Resolution rate", RATIO, report, previous, "totals.cohort_resolution_rate", better="higher",
                 note=f"{t['cohort_resolved']} of {t['cohort_opened']} opened in the period resolved now; "
                      f"resolutions / cycles started: {formatting.percent(t['resolution_rate'])}"),
            card("SLA targets met", RATIO, report, previous, "totals.sla_compliance", better="higher",
                 note=f"{t['sla_met']} met, {t['sla_breached']} missed"),
            card("Handle time per work session (median)", DURATION, report, previous, "totals.handle_time.median",
                 note=(f"{handled} session{'s' if handled != 1 else ''}, "
                       f"{formatting.duration(t['handle_time_total'])} in all") if handled else
                 "no work session has ended in the period"),
        ]
        if in_progress and in_progress["sessions"]:
            n = in_progress["sessions"]
            cards.append({"label": "Handle time in progress", "value": formatting.duration(in_progress["seconds"]),
                          "raw": in_progress["seconds"], "change": None,
                          "note": f"{n} work session{'s' if n != 1 else ''} still open; each counts above "
                                  "once it ends (5 min without activity)"})
        backlog = {"label": "Open at the end of the period", "value": formatting.number(_backlog_end(report)),
                   "raw": _backlog_end(report), "note": "conversations waiting to be resolved",
                   "change": _change(COUNT, _backlog_end(report), _backlog_end(previous), "lower")}
        return [*cards, backlog]
    if name == "experience":
        t = report["totals"]
        return [
            card("CSAT: customers satisfied", POINTS, report, previous, "totals.csat", better="higher",
                 note=f"% answering 4–5 of 5; {t['csat_answers']} answers") | {"value": _pct_text(t["csat"])},
            card("Survey response rate (CSAT)", RATIO, report, previous, "totals.csat_response_rate",
                 better="higher", note=f"{t['csat_sent']} surveys sent"),
            card("NPS", POINTS, report, previous, "totals.nps", better="higher",
                 note=f"{t['nps_answers']} answers"),
            card("Customer effort (CES, 1–7)", SCORE, report, previous, "totals.ces_mean", better="higher",
                 note="mean; higher is easier"),
            card("Net sentiment", POINTS, report, previous, "totals.net_sentiment", better="higher",
                 note="% positive − % negative messages"),
            card("Repeat contact rate", RATIO, report, previous, "totals.repeat_contact_rate", better="lower",
                 note="came back within 7 days of a resolution"),
            {"label": "Customers at risk", "value": formatting.number(len(report["customers_at_risk"])),
             "raw": len(report["customers_at_risk"]), "note": "churn words or falling sentiment",
             "change": None},
        ]
    if name == "marketing":
        t = report["totals"]
        top = report["topics"][0]["term"] if report["topics"] else None
        return [
            card("Mentions", COUNT, report, previous, "totals.messages", note="customer messages received"),
            card("Net sentiment", POINTS, report, previous, "totals.net_sentiment", better="higher",
                 note="% positive − % negative"),
            {"label": "Positive", "value": _share(t["positive"], t["scored"]), "raw": t["positive"],
             "note": f"{t['positive']:,} of {t['scored']:,} scored", "change": None},
            {"label": "Negative", "value": _share(t["negative"], t["scored"]), "raw": t["negative"],
             "note": f"{t['negative']:,} of {t['scored']:,} scored", "change": None},
            {"label": "Most mentioned topic", "value": top or formatting.DASH, "raw": top,
             "note": f"{report['topics'][0]['count']:,} mentions" if top else "no topic in the period",
             "change": None},
            {"label": "Spike alerts", "value": formatting.number(len(report["alerts"])), "raw": len(report["alerts"]),
             "note": "raised in the period", "change": None},
        ]
    t = report["totals"]
    return [
        card("Resolved conversations", COUNT, report, previous, "totals.conversations"),
        card("Handled within target, ended badly", COUNT, report, previous, "totals.met_but_bad", better="lower",
             note="service met, experience bad"),
        card("Missed a target, ended well", COUNT, report, previous, "totals.missed_but_good",
             note="service missed, experience good"),
        {"label": "Share with a gap", "value": _share(t["met_but_bad"] + t["missed_but_good"], t["conversations"]),
         "raw": None, "note": "of the resolved conversations", "change": None},
    ]


def _share(part: int, whole: int) -> str:
    return formatting.percent(part / whole) if whole else formatting.DASH


def _pct_text(value) -> str:
    return formatting.DASH if value is None else formatting.trim(f"{value:.1f}") + "%"

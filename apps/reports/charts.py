"""The report pages' charts, drawn on the server: a day series is an inline SVG of columns
(one or two series, negative values below a zero line), a comparison between channels or
topics is a list of CSS bars. No script, no library: they print, they read without
JavaScript, and each carries its figures as text (a bar's <title>, the list's values)."""
from __future__ import annotations

import datetime as dt

from . import formatting, metrics

WIDTH, HEIGHT = 600, 160


def _n(value: float) -> str:
    """A coordinate or width as SVG and CSS read it (never localised: 12.5, not 12,5)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _day_label(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day:%a} {day.day} {day:%b}"


def columns(title: str, days: list[str], series: list[tuple[str, list]], fmt=formatting.number,
            css: tuple[str, ...] = ("s1", "s2")) -> dict:
    """An SVG column chart of one or two day series. Values may be None (no bar) or negative."""
    values = [v for _, data in series for v in data if v is not None]
    top, bottom = max([0, *values]), min([0, *values])
    span = (top - bottom) or 1
    zero_y = HEIGHT * top / span
    n, k = max(len(days), 1), len(series)
    slot = WIDTH / n
    bar_w = slot * 0.8 / k
    bars = []
    for si, (label, data) in enumerate(series):
        for i, value in enumerate(data):
            if value is None:
                continue
            h = HEIGHT * abs(value) / span
            bars.append({"x": _n(i * slot + slot * 0.1 + si * bar_w), "w": _n(max(bar_w - 1, 1)),
                         "y": _n(zero_y - h if value >= 0 else zero_y), "h": _n(max(h, 0.5)),
                         "css": css[si % len(css)],
                         "title": f"{_day_label(days[i])}: {label} {fmt(value)}"})
    return {"kind": "columns", "title": title, "width": WIDTH, "height": HEIGHT, "zero_y": _n(zero_y),
            "bars": bars, "legend": [{"label": label, "css": css[i % len(css)]} for i, (label, _) in enumerate(series)],
            "top": fmt(top) if values and top > 0 else "", "bottom": fmt(bottom) if values and bottom < 0 else "",
            "first": _day_label(days[0]) if days else "", "last": _day_label(days[-1]) if len(days) > 1 else "",
            "empty": not values,
            "summary": f"{title}, {len(days)} days" + (f", highest {fmt(top)}" if values else ", no data")}


def hbars(title: str, rows: list[tuple[str, float | None, str]], signed: bool = False) -> dict:
    """CSS bars: (label, value, text shown beside). Signed values grow left or right of a middle line."""
    values = [abs(v) for _, v, _ in rows if v is not None]
    top = max(values) if values else 0
    out = []
    for label, value, text in rows:
        pct = _n(100 * abs(value) / top if value is not None and top else 0)
        out.append({"label": label, "text": text, "pct": pct, "negative": value is not None and value < 0})
    return {"kind": "hbars", "title": title, "rows": out, "signed": signed, "empty": not rows}


def _signed(value) -> str:
    return formatting.points(value)


def charts_for(report: dict) -> list[dict]:
    name = report["report"]
    if name == "service":
        by_day = report["by_day"]
        days = [r["day"] for r in by_day]
        return [
            columns("Messages in and replies sent per day", days,
                    [("in", [r["volume_in"] for r in by_day]), ("replies", [r["volume_out"] for r in by_day])]),
            columns("First response, median per day", days,
                    [("median", [r["first_response"]["median"] for r in by_day])], fmt=formatting.duration),
            columns("Open conversations at the end of each day", [r["day"] for r in report["backlog"]],
                    [("open", [r["backlog"] for r in report["backlog"]])]),
        ]
    if name == "experience":
        by_day = report["sentiment_by_day"]
        channels = report["by_channel"]
        return [
            columns("Net sentiment per day (% positive − % negative)", [r["day"] for r in by_day],
                    [("net", [r["net_sentiment"] for r in by_day])], fmt=_signed),
            hbars("CSAT by channel (% satisfied)",
                  [(r["channel"], r["csat"], f"{formatting.cell(r['csat'], 'csat')}% of {r['csat_answers']} answers"
                    if r["csat"] is not None else "no answers") for r in channels]),
            hbars("Repeat contact rate by channel",
                  [(r["channel"], r["repeat_contact_rate"], formatting.percent(r["repeat_contact_rate"]))
                   for r in channels]),
        ]
    if name == "marketing":
        by_day = report["by_day"]
        days = [r["day"] for r in by_day]
        channels: dict[str, dict] = {}
        for r in report["by_channel_day"]:
            c = channels.setdefault(r["channel"], {"messages": 0, "positive": 0, "negative": 0, "scored": 0})
            for k in c:
                c[k] += r[k] or 0
        return [
            columns("Mentions per day", days, [("mentions", [r["messages"] for r in by_day])]),
            columns("Net sentiment per day (% positive − % negative)", days,
                    [("net", [r["net_sentiment"] for r in by_day])], fmt=_signed),
            hbars("Mentions by channel",
                  [(ch, c["messages"], f"{c['messages']:,} · net "
                   f"{_signed(metrics.net_sentiment(c['positive'], c['negative'], c['scored']))}")
                   for ch, c in sorted(channels.items(), key=lambda kv: -kv[1]["messages"])]),
            hbars("Topics: mentions, and net sentiment",
                  [(t["term"], t["count"], f"{t['count']:,} · net {_signed(t['net_sentiment'])}")
                   for t in report["topics"][:8]]),
        ]
    if name == "gap":
        rows = report["by_channel"]
        return [
            hbars("Handled within target but ended badly, by channel",
                  [(r["name"], r["met_but_bad"], f"{r['met_but_bad']} of {r['conversations']}") for r in rows]),
            hbars("Missed a target but ended well, by channel",
                  [(r["name"], r["missed_but_good"], f"{r['missed_but_good']} of {r['conversations']}")
                   for r in rows]),
        ]
    return []


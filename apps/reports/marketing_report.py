"""The marketing report: sentiment by channel and account per local day, and the themes (terms,
hashtags, topics) with their trend."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Q, Sum
from django.db.models.functions import TruncDate

from . import metrics
from .metrics import CHANNEL_ACCOUNT, HOUR_SLICE_FILTERS
from .models import Grain, MetricRollup, MetricSlice, SpikeAlert, TermRollup
from .params import DEFINITIONS, ReportParams
from .slice_reader import (SENTIMENT_METRICS, Agg, SlicePlan, dimension_labels, local_buckets_q, rollup_breakdown,
                           rollup_rows, rows_group, sentiment_row, slice_breakdown, slice_groups, slice_plan)

# --- marketing ------------------------------------------------------------------

def _local_rows_q(params: ReportParams) -> Q:
    """The rows to regroup into local days: day rows for UTC (whole UTC days), else hour rows
    and the quarter-hour rows of the hours a local midnight splits, each in one local day."""
    lo, hi = params.utc_range
    if params.tz.key == "UTC":
        return Q(grain=Grain.DAY, bucket__gte=lo, bucket__lt=hi)
    return local_buckets_q(lo, hi, params.cuts)


def _term_range(params: ReportParams) -> Q:
    """The range as whole UTC days (day rows) plus the hours of the partial days at
    its ends (hour rows, and quarter-hour rows up to a local midnight that is not a whole
    hour): a 30-day Berlin range reads 29 day rows and 24 hour rows per term, not 720 hour
    rows. Only added, never subtracted: examples can't be."""
    lo, hi = params.utc_range
    inner_lo = metrics.floor_day(lo) + (dt.timedelta(days=1) if lo != metrics.floor_day(lo) else dt.timedelta())
    inner_hi = metrics.floor_day(hi)
    if inner_hi <= inner_lo:
        return local_buckets_q(lo, hi)
    return (Q(grain=Grain.DAY, bucket__gte=inner_lo, bucket__lt=inner_hi)
            | local_buckets_q(lo, inner_lo) | local_buckets_q(inner_hi, hi))


def _term_rows(params: ReportParams, q: Q):
    qs = TermRollup.objects.filter(q)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    if params.account_id:
        qs = qs.filter(account_id=params.account_id)
    return qs


TERM_SUMS = {"count": Sum("count"), "positive": Sum("positive"), "negative": Sum("negative"),
             "neutral": Sum("neutral")}


def themes_by_type(params: ReportParams, term_types, limit: int = 20) -> dict[str, list[dict]]:
    """The `limit` most frequent terms of each type, with their sentiment and example
    posts. The counts are summed in SQL (one row per term); only the listed terms'
    examples are fetched and merged (the strongest two each way are the same whether
    merged row by row or at once: a message is in one row of the range)."""
    rows = _term_rows(params, _term_range(params) & Q(term_type__in=list(term_types)))
    acc: dict = {t: [] for t in term_types}
    for term_type, term, count, pos, neg, neu in rows.values_list("term_type", "term").annotate(
            **TERM_SUMS).order_by():
        acc[term_type].append({"term": term, "count": count, "positive": pos, "negative": neg, "neutral": neu,
                               "examples": []})
    out = {}
    for term_type, found in acc.items():
        found.sort(key=lambda r: (-r["count"], r["term"]))
        out[term_type] = found[:limit]
    listed = {(t, r["term"]): r for t, found in out.items() for r in found}
    examples = defaultdict(list)
    if listed:
        for term_type, term, found in rows.filter(term__in={term for _, term in listed}).values_list(
                "term_type", "term", "examples"):
            if found and (term_type, term) in listed:
                examples[(term_type, term)].extend(found)
    for key, row in listed.items():
        row["examples"] = metrics.examples_merge([], examples.get(key, []))
        if not params.show_people:
            for e in row["examples"]:
                e.pop("conversation_id", None)
        row["net_sentiment"] = metrics.net_sentiment(row["positive"], row["negative"],
                                                     row["positive"] + row["negative"] + row["neutral"])
    return out


def themes(params: ReportParams, term_type: str, limit: int = 20) -> list[dict]:
    return themes_by_type(params, (term_type,), limit)[term_type]


def terms_by_day(params: ReportParams, term_type: str, terms: list[str]) -> list[dict]:
    """Volume and net sentiment per local day of the given terms, summed in SQL per
    local day (day rows in UTC; elsewhere hour rows, and quarter-hour rows in the hours a
    local midnight splits: local_buckets_q)."""
    lo, hi = params.utc_range
    acc = {}
    if terms:
        rows = _term_rows(params, _local_rows_q(params) & Q(term_type=term_type, term__in=terms))
        for day, term, count, pos, neg, neu in rows.annotate(day=TruncDate("bucket", tzinfo=params.tz)).values_list(
                "day", "term").annotate(**TERM_SUMS).order_by():
            acc[(day, term)] = (count, pos, neg, pos + neg + neu)
    empty = (0, 0, 0, 0)
    out = []
    for term in terms:
        for day in params.days:
            count, pos, neg, scored = acc.get((day, term), empty)
            out.append({"day": day.isoformat(), "term": term, "messages": count,
                        "net_sentiment": metrics.net_sentiment(pos, neg, scored)})
    return out


def _sentiment_series(params: ReportParams) -> dict:
    """Totals, by day, by channel x day, by account and by account x day."""
    plan = slice_plan(params)
    if plan:
        groups, days = slice_groups(plan, SENTIMENT_METRICS)
        if plan.fdim in HOUR_SLICE_FILTERS:
            _channel_account_days_add(params, plan, days)
        else:
            _full_days_add(params, SENTIMENT_METRICS, days)
        by_account = slice_breakdown(groups, params, "account", sentiment_row)
        accounts = {r["account_id"]: r["account"] for r in by_account}  # labels looked up once
        return {
            "totals": sentiment_row(groups.get(("", ""), Agg())),
            "by_day": [{"day": d.isoformat(), **sentiment_row(days.get(("", "", d)) or Agg())} for d in params.days],
            "by_channel_day": [{"channel": c, "day": d.isoformat(),
                                **sentiment_row(days.get(("channel", c, d)) or Agg())}
                               for c in sorted(k for dim, k in groups if dim == "channel") for d in params.days],
            "by_account": by_account,
            "by_account_day": [{"account": label, "day": d.isoformat(),
                                **sentiment_row(days.get(("account", str(a), d)) or Agg())}
                               for a, label in sorted(accounts.items()) for d in params.days],
        }
    rows = list(rollup_rows(params, SENTIMENT_METRICS))
    by_channel_day, by_account_day = [], []
    for channel in sorted({r[2] for r in rows}):
        sub = [r for r in rows if r[2] == channel]
        for row in rollup_breakdown(sub, params, "day", sentiment_row):
            by_channel_day.append({"channel": channel, **row})
    accounts = dimension_labels("account", {r[3] for r in rows}, params.show_people)
    for account_id in sorted(accounts):
        sub = [r for r in rows if r[3] == account_id]
        for row in rollup_breakdown(sub, params, "day", sentiment_row):
            by_account_day.append({"account": accounts[account_id], **row})
    return {"totals": sentiment_row(rows_group(rows, params, None).get("all", Agg())),
            "by_day": rollup_breakdown(rows, params, "day", sentiment_row), "by_channel_day": by_channel_day,
            "by_account": rollup_breakdown(rows, params, "account", sentiment_row), "by_account_day": by_account_day}


def _channel_account_days_add(params: ReportParams, plan: SlicePlan, days: dict) -> None:
    """The per-day series by channel and by account: the channel-and-account hour slices of
    the plan's filter (or none) summed per local day in SQL, each hour in its local day
    (quarter-hour slices where a local midnight splits an hour): a few rows an hour (90
    days in Los Angeles, ~43k rows) where the day slices plus each day's edge hours took ~0.45 s
    of Python, and a filter's full hour rows a scan of the whole rollup table."""
    lo, hi = params.utc_range
    rows = MetricSlice.objects.filter(local_buckets_q(lo, hi, params.cuts), fdim=plan.fdim, fkey=plan.fkey,
                                      dim=CHANNEL_ACCOUNT, metric__in=SENTIMENT_METRICS)
    for day, key, metric, c, t in (rows.annotate(day=TruncDate("bucket", tzinfo=params.tz))
                                   .values_list("day", "key", "metric").annotate(c=Sum("count"), t=Sum("total"))
                                   .order_by()):
        channel, account_id = key.rsplit("|", 1)
        days[("channel", channel, day)].add(metric, c, t, None)
        days[("account", account_id, day)].add(metric, c, t, None)


def _full_days_add(params: ReportParams, metric_names, days: dict) -> None:
    """An agent's per-day series by channel and by account (agents have no hour slices): its
    full rows of the count metrics summed per local day, channel and account in SQL (day rows in
    UTC; elsewhere hour rows, and quarter-hour rows in the hours a local midnight splits),
    read through the agent index."""
    rows = MetricRollup.objects.filter(_local_rows_q(params), metric__in=list(metric_names), **params.filters())
    for day, channel, account_id, metric, c, t in (
            rows.annotate(day=TruncDate("bucket", tzinfo=params.tz)).values_list("day", "channel", "account_id", "metric")
            .annotate(c=Sum("count"), t=Sum("total")).order_by()):
        days[("channel", channel, day)].add(metric, c, t, None)
        days[("account", str(account_id), day)].add(metric, c, t, None)


def marketing_report(*, params: ReportParams) -> dict:
    series = _sentiment_series(params)
    found = themes_by_type(params, ("topic", "hashtag", "keyword"))
    topics, hashtags, keywords = found["topic"], found["hashtag"], found["keyword"]
    min_count = 2
    ranked = [t for t in topics if t["net_sentiment"] is not None and t["count"] >= min_count]
    lo, hi = params.utc_range
    alerts = SpikeAlert.objects.filter(bucket__gte=lo, bucket__lt=hi)
    if params.channel:
        alerts = alerts.filter(channel=params.channel)
    return {
        "report": "marketing", "params": params.as_dict(),
        "definitions": {k: DEFINITIONS[k] for k in ("sentiment", "themes", "spikes", "periods")},
        **series,
        "topics": topics, "hashtags": hashtags, "keywords": keywords,
        "topics_by_day": terms_by_day(params, "topic", [t["term"] for t in topics[:6]]),
        "hashtags_by_day": terms_by_day(params, "hashtag", [t["term"] for t in hashtags[:6]]),
        "keywords_by_day": terms_by_day(params, "keyword", [t["term"] for t in keywords[:6]]),
        # a topic with no positive mention is no one's "top positive" (nor one with more
        # negative than positive): only topics on the list's own side of zero
        "top_positive": sorted((t for t in ranked if t["positive"] > 0 and t["net_sentiment"] > 0),
                               key=lambda t: (-t["net_sentiment"], -t["count"]))[:5],
        "top_negative": sorted((t for t in ranked if t["negative"] > 0 and t["net_sentiment"] < 0),
                               key=lambda t: (t["net_sentiment"], -t["count"]))[:5],
        "alerts": [{"id": a.pk, "kind": a.kind, "channel": a.channel, "hour": a.bucket.astimezone(params.tz).isoformat(),
                    "value": a.value, "baseline": a.baseline, "message": a.message} for a in alerts[:50]],
    }

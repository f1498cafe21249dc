"""The service report: volumes, response and resolution times (business hours too), reopen rate,
SLA, and the backlog by day."""
from __future__ import annotations

from collections import defaultdict

from django.db.models import Sum

from . import metrics
from .models import Grain, MetricRollup
from .params import DEFINITIONS, ReportParams
from .slice_reader import (BACKLOG_SIGNS, Agg, SlicePlan, local_buckets_q, plan_spans, rollup_breakdown, rollup_rows,
                           rows_group, slice_breakdown, slice_groups, slice_plan, spans_q)

SERVICE_METRICS = ["msg_in", "msg_out", "msg_out_bot", "opened", "reopened", "dismissed", "resolved", "resolved_bh",
                   "first_response", "first_response_bh", "reply", "reply_bh", "sla_met", "sla_breached", "handle",
                   "first_response_conv", "first_response_conv_bh", "resolution_full", "resolution_full_bh",
                   "cohort_resolved", "cohort_dismissed", "handled", "handled_resolved"]


def _service_row(agg: Agg) -> dict:
    started = agg.n("opened") + agg.n("reopened") - agg.n("dismissed")
    decided = agg.n("sla_met") + agg.n("sla_breached")
    cohort = agg.n("opened") - agg.n("cohort_dismissed")
    return {
        "volume_in": agg.n("msg_in"), "volume_out": agg.n("msg_out"), "volume_out_bot": agg.n("msg_out_bot"),
        "opened": agg.n("opened"), "reopened": agg.n("reopened"), "dismissed": agg.n("dismissed"),
        "resolved": agg.n("resolved"),
        "first_response": agg.summary("first_response"),
        "first_response_business": agg.summary("first_response_bh"),
        "reply": agg.summary("reply"),
        "reply_business": agg.summary("reply_bh"),
        "resolution": agg.summary("resolved"),
        "resolution_rate": metrics.ratio(agg.n("resolved"), started),
        "reopen_rate": metrics.ratio(agg.n("reopened"), agg.n("resolved")),
        "sla_met": agg.n("sla_met"), "sla_breached": agg.n("sla_breached"),
        "sla_compliance": metrics.ratio(agg.n("sla_met"), decided),
        "handle_time": agg.summary("handle"),
        "handle_time_total": agg.total.get("handle", 0.0),
        # the industry definitions (DEFINITIONS): once per conversation, first contact -> final
        # resolve, the cohort of the period's new conversations; the per-cycle ones above keep their names
        "first_response_conversation": agg.summary("first_response_conv"),
        "first_response_conversation_business": agg.summary("first_response_conv_bh"),
        "resolution_full": agg.summary("resolution_full"),
        "resolution_full_business": agg.summary("resolution_full_bh"),
        "cohort_opened": cohort, "cohort_resolved": agg.n("cohort_resolved"),
        "cohort_resolution_rate": metrics.ratio(agg.n("cohort_resolved"), cohort),
        # per agent: the cycles the agent handled (replied in it, resolved it, or still assigned at its reopen) and how
        # many of those the agent resolved, both counted at the cycle's start
        "handled": agg.n("handled"), "handled_resolved": agg.n("handled_resolved"),
        "handled_resolution_rate": metrics.ratio(agg.n("handled_resolved"), agg.n("handled")),
    }


def backlog_series(params: ReportParams) -> list[dict]:
    """Open cycles at the end of each local day (its exact local midnight): everything before
    the range (day rows up to the UTC day, hour and quarter-hour rows after it) plus the running
    sum of each local day (hour rows, and quarter rows in the hours a local midnight splits)."""
    lo, hi = params.utc_range
    day_lo = metrics.floor_day(lo)
    signs = {"opened": 1, "reopened": 1, "resolved": -1, "dismissed": -1}

    def net(qs):
        return sum(signs[m] * (c or 0) for m, c in qs.values_list("metric").annotate(c=Sum("count")).order_by())

    base = MetricRollup.objects.filter(metric__in=list(signs), **params.filters())
    start = net(base.filter(grain=Grain.DAY, bucket__lt=day_lo))
    if day_lo < lo:
        start += net(base.filter(local_buckets_q(day_lo, lo)))
    per_day = defaultdict(int)
    for bucket, metric, count in base.filter(local_buckets_q(lo, hi, params.cuts)).values_list(
            "bucket", "metric", "count"):
        per_day[bucket.astimezone(params.tz).date()] += signs[metric] * count
    out, running = [], start
    for day in params.days:
        running += per_day.get(day, 0)
        out.append({"day": day.isoformat(), "backlog": running})
    return out


def _slice_backlog(params: ReportParams, days: dict, plan: SlicePlan) -> list[dict]:
    """Open cycles before the range (the slices before its first UTC day, less the
    plan's signed start hours) plus the running sum of each local day."""
    start = sum(BACKLOG_SIGNS[m] * (c or 0) for m, c in plan.slices.filter(
        spans_q(plan_spans(None, plan.lo), dim="", metric__in=list(BACKLOG_SIGNS))).values_list("metric")
        .annotate(c=Sum("count")).order_by()) - plan.start_shift
    out, running = [], start
    for day in params.days:
        agg = days.get(("", "", day))
        if agg is not None:
            running += sum(sign * agg.n(m) for m, sign in BACKLOG_SIGNS.items())
        out.append({"day": day.isoformat(), "backlog": running})
    return out


SERVICE_DEFINITIONS = ("first_response_conversation", "resolution_full", "cohort_resolution_rate", "first_response",
                       "reply", "resolution", "resolution_rate", "reopen_rate", "agents", "business_hours", "sla",
                       "volume", "backlog", "handle_time", "periods")


def service_report(*, params: ReportParams) -> dict:
    head = {"report": "service", "params": params.as_dict(),
            "definitions": {k: DEFINITIONS[k] for k in SERVICE_DEFINITIONS}}
    plan = slice_plan(params)
    if plan:
        groups, days = slice_groups(plan, SERVICE_METRICS)
        return {
            **head, "totals": _service_row(groups.get(("", ""), Agg())),
            "by_day": [{"day": d.isoformat(), **_service_row(days.get(("", "", d)) or Agg())} for d in params.days],
            **{f"by_{by}": slice_breakdown(groups, params, by, _service_row)
               for by in ("channel", "queue", "team", "agent")},
            "backlog": _slice_backlog(params, days, plan),
        }
    rows = list(rollup_rows(params, SERVICE_METRICS))
    totals = rows_group(rows, params, None).get("all", Agg())
    return {
        **head, "totals": _service_row(totals),
        "by_day": rollup_breakdown(rows, params, "day", _service_row),
        "by_channel": rollup_breakdown(rows, params, "channel", _service_row),
        "by_queue": rollup_breakdown(rows, params, "queue", _service_row),
        "by_team": rollup_breakdown(rows, params, "team", _service_row),
        "by_agent": rollup_breakdown(rows, params, "agent", _service_row),
        "backlog": backlog_series(params),
    }

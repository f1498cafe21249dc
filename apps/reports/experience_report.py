"""The experience report: sentiment by day, CSAT, CES and NPS, the conversations whose sentiment
shifted, and the customers at risk."""
from __future__ import annotations

from django.db.models import Count, F, Q, Sum

from apps.contacts.models import Customer

from . import metrics
from .models import CustomerFact
from .params import DEFINITIONS, ReportParams
from .slice_reader import (SENTIMENT_METRICS, Agg, conversation_facts, conversation_link, rollup_breakdown, rollup_rows,
                           rows_group, sentiment_row, slice_breakdown, slice_groups, slice_plan)

EXPERIENCE_METRICS = ["csat", "csat_sent", "csat_answered", "ces", "ces_sent", "ces_answered", "nps", "nps_sent",
                      "nps_answered", "msg_in", "sentiment", "msg_in_positive", "msg_in_negative",
                      "msg_in_neutral", "resolved", "repeat_contact"]


def _experience_row(agg: Agg) -> dict:
    ces = agg.scores("ces")
    return {
        "csat": metrics.csat_score(agg.scores("csat")), "csat_answers": agg.n("csat"),
        "csat_sent": agg.n("csat_sent"),
        "csat_response_rate": metrics.ratio(agg.n("csat_answered"), agg.n("csat_sent")),
        "ces_mean": (sum(ces) / len(ces)) if ces else None, "ces_median": metrics.percentile(ces, 50),
        "ces_answers": len(ces), "ces_response_rate": metrics.ratio(agg.n("ces_answered"), agg.n("ces_sent")),
        "nps": metrics.nps_score(agg.scores("nps")), "nps_answers": agg.n("nps"),
        "nps_response_rate": metrics.ratio(agg.n("nps_answered"), agg.n("nps_sent")),
        "resolved": agg.n("resolved"), "repeat_contacts": agg.n("repeat_contact"),
        "repeat_contact_rate": metrics.ratio(agg.n("repeat_contact"), agg.n("resolved")),
        **sentiment_row(agg),
    }


def sentiment_shift(params: ReportParams, limit: int = 15) -> dict:
    """Counted in SQL, and only the listed conversations fetched: 90 days are ~200k
    facts, which took ~0.5 s to build, label and sort in Python. (One statement
    scanning them once, a CTE read three times, measured slower than these three
    scans, which PostgreSQL runs in parallel.)"""
    facts = conversation_facts(params).filter(first_sentiment__isnull=False, last_sentiment__isnull=False)
    # sentiment_label(v) == "negative" exactly when v <= NEGATIVE (POSITIVE is above it)
    first_negative, last_negative = Q(first_sentiment__lte=metrics.NEGATIVE), Q(last_sentiment__lte=metrics.NEGATIVE)
    counts = facts.aggregate(
        conversations=Count("pk"), turned_around=Count("pk", filter=first_negative & ~last_negative),
        worsened=Count("pk", filter=~first_negative & last_negative),
        stayed_negative=Count("pk", filter=first_negative & last_negative),
        shift_sum=Sum(F("last_sentiment") - F("first_sentiment")))
    shift_sum, n = counts.pop("shift_sum"), counts["conversations"]
    listed = facts.annotate(shift=F("last_sentiment") - F("first_sentiment")).values_list(
        "conversation_id", "channel", "first_sentiment", "last_sentiment", "inbound")

    def rows(order):
        return [{"conversation_id": cid, "link": conversation_link(cid, params), "channel": channel,
                 "first": first, "last": last, "shift": last - first, "messages": inbound}
                for cid, channel, first, last, inbound in listed.order_by(*order)[:limit]] if n else []

    return {
        **counts, "mean_shift": (shift_sum / n) if n else None,
        # ties in shift by conversation id: one sorted list read from both ends
        "most_improved": rows(("-shift", "-conversation_id")), "most_worsened": rows(("shift", "conversation_id")),
    }


def customers_at_risk(params: ReportParams, limit: int = 50) -> list[dict]:
    lo, hi = params.utc_range
    qs = CustomerFact.objects.filter(last_contact_at__gte=lo, last_contact_at__lt=hi)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    out = []
    # rows, not models: 2,000 instances cost ~25 ms more
    for customer_id, channel, recent, churn_words, last_contact_at, last_conversation_id in qs.order_by(
            "-last_contact_at").values_list("customer_id", "channel", "recent", "churn_words", "last_contact_at",
                                            "last_conversation_id")[:2000]:
        values = [v for _, v in recent]
        reasons = []
        if churn_words:
            reasons.append("churn words: " + ", ".join(churn_words))
        if len(values) >= 2 and all(v <= metrics.NEGATIVE for v in values[-2:]):
            reasons.append("last two messages negative")
        if len(values) >= 2 and values[-1] - values[0] <= -0.5:
            reasons.append(f"sentiment fell {values[0]:+.2f} → {values[-1]:+.2f}")
        if reasons:
            out.append({"customer_id": customer_id, "channel": channel, "reasons": reasons,
                        "last_sentiment": values[-1] if values else None,
                        "last_contact_at": last_contact_at.astimezone(params.tz).isoformat(),
                        "link": conversation_link(last_conversation_id, params)})
    out.sort(key=lambda r: (-len(r["reasons"]), r["last_sentiment"] if r["last_sentiment"] is not None else 0))
    out = out[:limit]
    if params.show_people:
        names = dict(Customer.objects.filter(pk__in=[r["customer_id"] for r in out]).values_list("pk", "name"))
        for r in out:
            r["customer"] = names.get(r["customer_id"], "")
    return out


def experience_report(*, params: ReportParams) -> dict:
    plan = slice_plan(params)
    if plan:
        # the per-day series is the sentiment's: only its metrics are read per day
        groups, days = slice_groups(plan, EXPERIENCE_METRICS, day_metrics=SENTIMENT_METRICS)
        figures = {
            "totals": _experience_row(groups.get(("", ""), Agg())),
            "by_channel": slice_breakdown(groups, params, "channel", _experience_row),
            "sentiment_by_day": [{"day": d.isoformat(), **sentiment_row(days.get(("", "", d)) or Agg())}
                                 for d in params.days]}
    else:
        rows = list(rollup_rows(params, EXPERIENCE_METRICS))
        figures = {"totals": _experience_row(rows_group(rows, params, None).get("all", Agg())),
                   "by_channel": rollup_breakdown(rows, params, "channel", _experience_row),
                   "sentiment_by_day": rollup_breakdown(rows, params, "day", sentiment_row)}
    return {
        "report": "experience", "params": params.as_dict(),
        "definitions": {k: DEFINITIONS[k] for k in ("csat", "ces", "nps", "sentiment", "shift", "repeat",
                                                    "at_risk", "periods")},
        **figures,
        "sentiment_shift": sentiment_shift(params),
        "customers_at_risk": customers_at_risk(params),
    }

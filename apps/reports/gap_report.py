"""The gap report: where service and experience disagree (SLA met but the customer unhappy; missed
but happy), by tag and topic."""
from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from . import metrics
from .params import DEFINITIONS, ReportParams
from .slice_reader import conversation_facts, conversation_link, dimension_labels

# --- gap ------------------------------------------------------------------------

def _gap_kinds() -> tuple[Q, Q]:
    """Service met but experience bad, and missed but good, as conditions on the
    facts (DEFINITIONS["gap"]), so the database counts them instead of Python
    building every resolved conversation of the range."""
    target = getattr(settings, "REPORTS_GAP_FRT_TARGET_SECONDS", 3600)
    decided = Q(sla_met__gt=0) | Q(sla_breached__gt=0)
    met = (decided & Q(sla_breached=0)) | (~decided & Q(first_response_seconds__lte=target))
    bad = Q(last_sentiment__lte=metrics.NEGATIVE) | Q(csat__lte=2)
    good = ~bad & (Q(last_sentiment__gte=metrics.POSITIVE) | Q(csat__gte=4))
    return met & bad, ~met & good


# Grouped by the tag list first (a few hundred distinct lists), then unnested: unnesting
# every row made PostgreSQL estimate millions of rows and spend ~0.7 s compiling it (JIT).
GAP_TERMS_SQL = """
WITH g AS (
  SELECT f.tags, f.topics, GROUPING(f.tags) AS by_topic, count(*) AS n,
         count(*) FILTER (WHERE f.met_bad) AS met_bad, count(*) FILTER (WHERE f.missed_good) AS missed_good
  FROM ({facts}) f GROUP BY GROUPING SETS ((f.tags), (f.topics))
)
SELECT CASE WHEN by_topic = 0 THEN 'tag' ELSE 'topic' END, t.name, sum(n)::int, sum(met_bad)::int,
       sum(missed_good)::int
FROM g CROSS JOIN LATERAL jsonb_array_elements_text(CASE
    WHEN by_topic = 0 THEN CASE WHEN jsonb_array_length(tags) = 0 THEN '["(no tag)"]'::jsonb ELSE tags END
    ELSE CASE WHEN jsonb_array_length(topics) = 0 THEN '["(no topic)"]'::jsonb ELSE topics END END) AS t(name)
GROUP BY 1, 2
"""
GAP_NONE = {"tag": "(no tag)", "topic": "(no topic)"}


def _gap_counts() -> dict:
    return {"conversations": 0, "met_but_bad": 0, "missed_but_good": 0}


def _gap_terms(facts) -> dict:
    """{"tag": {name: counts}, "topic": ...}: a conversation counts under each of its
    tags. In SQL on PostgreSQL; on the embedded SQLite in Python (its small data sets)."""
    from django.db import connection

    out = {g: defaultdict(_gap_counts) for g in GAP_NONE}
    rows = facts.values_list("tags", "topics", "met_bad", "missed_good").order_by()
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(GAP_TERMS_SQL.format(facts=sql), params)
            for group, name, n, met_bad, missed_good in cursor.fetchall():
                out[group][name] = {"conversations": n, "met_but_bad": met_bad, "missed_but_good": missed_good}
        return out
    for tags, topics, met_bad, missed_good in rows:
        for group, names in (("tag", tags), ("topic", topics)):
            for name in names or [GAP_NONE[group]]:
                out[group][name]["conversations"] += 1
                out[group][name]["met_but_bad"] += bool(met_bad)
                out[group][name]["missed_but_good"] += bool(missed_good)
    return out


def gap_report(*, params: ReportParams, limit: int = 100) -> dict:
    """Counted by the database (one grouped query, one for tags and topics); only the
    listed conversations are fetched: 5 queries whatever the range."""
    met_bad, missed_good = _gap_kinds()
    facts = conversation_facts(params).annotate(met_bad=ExpressionWrapper(met_bad, output_field=BooleanField()),
                                    missed_good=ExpressionWrapper(missed_good, output_field=BooleanField()))
    cells = list(conversation_facts(params).values("channel", "queue_id").order_by().annotate(
        conversations=Count("pk"), met_but_bad=Count("pk", filter=met_bad),
        missed_but_good=Count("pk", filter=missed_good)))
    lists = {kind: list(conversation_facts(params).filter(cond).order_by("-last_resolved_at", "conversation_id")[:limit])
             for kind, cond in (("met_but_bad", met_bad), ("missed_but_good", missed_good))}
    queues = dimension_labels("queue", {*(c["queue_id"] for c in cells), *(f.queue_id for rows in lists.values()
                                                                  for f in rows)}, params.show_people)
    totals = _gap_counts()
    groups = {"channel": defaultdict(_gap_counts), "queue": defaultdict(_gap_counts), **_gap_terms(facts)}
    for cell in cells:
        # two queues may share a name: one row for the name, as the page shows it
        for target in (totals, groups["channel"][cell["channel"]], groups["queue"][queues.get(cell["queue_id"],
                                                                                              "(none)")]):
            for k in totals:
                target[k] += cell[k]

    def row(fact):
        return {"conversation_id": fact.conversation_id, "link": conversation_link(fact.conversation_id, params),
                "channel": fact.channel, "queue": queues.get(fact.queue_id, "(none)"), "tags": fact.tags,
                "topics": fact.topics, "first_response_seconds": fact.first_response_seconds,
                "sla_met": fact.sla_met, "sla_breached": fact.sla_breached,
                "last_sentiment": fact.last_sentiment, "csat": fact.csat,
                "resolved_at": fact.last_resolved_at.astimezone(params.tz).isoformat()}

    grouped = {g: sorted(({"name": n, **v} for n, v in d.items()), key=lambda r: (-r["met_but_bad"], r["name"]))
               for g, d in groups.items()}
    return {
        "report": "gap", "params": params.as_dict(), "definitions": {"gap": DEFINITIONS["gap"],
                                                                     "periods": DEFINITIONS["periods"]},
        "totals": totals,
        "by_channel": grouped["channel"], "by_queue": grouped["queue"], "by_tag": grouped["tag"],
        "by_topic": grouped["topic"],
        "met_but_bad": [row(f) for f in lists["met_but_bad"]],
        "missed_but_good": [row(f) for f in lists["missed_but_good"]],
    }

"""Fills the new read models from the rollups already there: MetricSlice from
the day MetricRollup rows, day TermRollup rows from the hour ones. (A
`reports_rebuild` gives the same result from the metric events.)"""
import math

from django.db import migrations

EXACT_MAX = 200


def _bin(value):
    return 0 if value < 1 else int(math.floor(math.log(value) / math.log(1.05))) + 1


def _merge(current, new, keep=2):
    pool = {e["message_id"]: e for e in [*current, *new]}.values()
    negative = sorted((e for e in pool if e["sentiment"] <= -0.05), key=lambda e: (e["sentiment"], e["message_id"]))
    positive = sorted((e for e in pool if e["sentiment"] >= 0.05), key=lambda e: (-e["sentiment"], e["message_id"]))
    return negative[:keep] + positive[:keep]


SLICES_SQL = """
WITH d AS (
  SELECT bucket, metric, channel, account_id::text AS a, queue_id::text AS q, team_id::text AS t,
         agent_id::text AS g, count, total, "values" FROM reports_metricrollup WHERE grain = 'd'
), s AS (
  SELECT bucket, metric, '' AS dim, '' AS key, count, total, "values" FROM d
  UNION ALL SELECT bucket, metric, 'channel', channel, count, total, "values" FROM d
  UNION ALL SELECT bucket, metric, 'account', a, count, total, "values" FROM d
  UNION ALL SELECT bucket, metric, 'queue', q, count, total, "values" FROM d
  UNION ALL SELECT bucket, metric, 'team', t, count, total, "values" FROM d
  UNION ALL SELECT bucket, metric, 'agent', g, count, total, "values" FROM d
), agg AS (
  SELECT bucket, metric, dim, key, sum(count) AS count, sum(total) AS total FROM s GROUP BY 1, 2, 3, 4
), vals AS (
  SELECT s.bucket, s.metric, s.dim, s.key, v::float AS v
  FROM s CROSS JOIN LATERAL jsonb_array_elements_text(s."values") v WHERE jsonb_array_length(s."values") > 0
), hist AS (
  SELECT bucket, metric, dim, key, jsonb_object_agg(b::text, n) AS hist FROM (
    SELECT bucket, metric, dim, key, CASE WHEN v < 1 THEN 0 ELSE floor(ln(v) / ln(1.05))::int + 1 END AS b,
           count(*) AS n FROM vals GROUP BY 1, 2, 3, 4, 5) x
  GROUP BY 1, 2, 3, 4
), exact AS (
  SELECT v.bucket, v.metric, v.dim, v.key, jsonb_agg(v.v ORDER BY v.v) AS vs
  FROM vals v JOIN agg USING (bucket, metric, dim, key) WHERE agg.count <= 200 GROUP BY 1, 2, 3, 4
)
INSERT INTO reports_metricslice (bucket, metric, dim, key, count, total, "values", hist)
SELECT agg.bucket, agg.metric, agg.dim, agg.key, agg.count, agg.total, coalesce(exact.vs, '[]'),
       coalesce(hist.hist, '{}')
FROM agg LEFT JOIN hist USING (bucket, metric, dim, key) LEFT JOIN exact USING (bucket, metric, dim, key)
"""

# Day term rows; examples: the two most negative and two most positive of the day (as _example_merge).
TERM_DAYS_SQL = """
WITH h AS (
  SELECT date_trunc('day', bucket) AS day, channel, account_id, term_type, term, count, positive, negative,
         neutral, total, examples FROM reports_termrollup WHERE grain = 'h'
), agg AS (
  SELECT day, channel, account_id, term_type, term, sum(count) AS c, sum(positive) AS p, sum(negative) AS n,
         sum(neutral) AS u, sum(total) AS t FROM h GROUP BY 1, 2, 3, 4, 5
), ex AS (
  SELECT day, channel, account_id, term_type, term, e, (e->>'sentiment')::float AS s,
         (e->>'message_id')::bigint AS mid
  FROM h CROSS JOIN LATERAL jsonb_array_elements(h.examples) e
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY day, channel, account_id, term_type, term, s <= -0.05
                               ORDER BY CASE WHEN s <= -0.05 THEN s ELSE -s END, mid) AS rn
  FROM ex WHERE s <= -0.05 OR s >= 0.05
), top AS (
  SELECT day, channel, account_id, term_type, term,
         jsonb_agg(e ORDER BY s > -0.05, CASE WHEN s <= -0.05 THEN s ELSE -s END, mid) AS examples
  FROM ranked WHERE rn <= 2 GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO reports_termrollup (grain, bucket, channel, account_id, term_type, term, count, positive, negative,
                                neutral, total, examples)
SELECT 'd', agg.day, agg.channel, agg.account_id, agg.term_type, agg.term, agg.c, agg.p, agg.n, agg.u, agg.t,
       coalesce(top.examples, '[]')
FROM agg LEFT JOIN top USING (day, channel, account_id, term_type, term)
"""


def fill(apps, schema_editor):
    MetricRollup = apps.get_model("reports", "MetricRollup")
    MetricSlice = apps.get_model("reports", "MetricSlice")
    TermRollup = apps.get_model("reports", "TermRollup")
    # Each part only once: rows already there (built by other means) are kept.
    slices_missing = not MetricSlice.objects.exists()
    days_missing = not TermRollup.objects.filter(grain="d").exists()
    if schema_editor.connection.vendor == "postgresql":  # set-based: large tables in minutes, not hours
        if slices_missing:
            schema_editor.execute(SLICES_SQL)
        if days_missing:
            schema_editor.execute(TERM_DAYS_SQL)
        return
    if slices_missing:
        _slices_fill(MetricRollup, MetricSlice)
    if days_missing:
        _term_days_fill(TermRollup)


def _slices_fill(MetricRollup, MetricSlice):  # noqa: N803 - historical models
    slices = {}
    for r in MetricRollup.objects.filter(grain="d").iterator(chunk_size=2000):
        for dim, key in (("", ""), ("channel", r.channel), ("account", str(r.account_id)),
                         ("queue", str(r.queue_id)), ("team", str(r.team_id)), ("agent", str(r.agent_id))):
            row = slices.setdefault((r.bucket, r.metric, dim, key), [0, 0.0, []])
            row[0] += r.count
            row[1] += r.total
            row[2].extend(r.values or [])
    out = []
    for (bucket, metric, dim, key), (count, total, values) in slices.items():
        hist = {}
        for v in values:
            hist[str(_bin(v))] = hist.get(str(_bin(v)), 0) + 1
        out.append(MetricSlice(bucket=bucket, metric=metric, dim=dim, key=key, count=count, total=total, hist=hist,
                               values=sorted(values) if count <= EXACT_MAX else []))
    MetricSlice.objects.bulk_create(out, batch_size=1000)


def _term_days_fill(TermRollup):  # noqa: N803 - historical model
    days = {}
    for r in TermRollup.objects.filter(grain="h").iterator(chunk_size=2000):
        day = r.bucket.replace(hour=0, minute=0, second=0, microsecond=0)
        row = days.setdefault((day, r.channel, r.account_id, r.term_type, r.term), TermRollup(
            grain="d", bucket=day, channel=r.channel, account_id=r.account_id, term_type=r.term_type, term=r.term,
            count=0, positive=0, negative=0, neutral=0, total=0.0, examples=[]))
        for f in ("count", "positive", "negative", "neutral", "total"):
            setattr(row, f, getattr(row, f) + getattr(r, f))
        row.examples = _merge(row.examples, r.examples or [])
    TermRollup.objects.bulk_create(days.values(), batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("reports", "0006_term_rollup_days")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]

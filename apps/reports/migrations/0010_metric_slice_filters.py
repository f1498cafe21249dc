"""Filter slices: MetricSlice rows restricted to one value of one dimension (fdim, fkey),
so a report with ?team= (or channel, account, queue, agent) reads slices as an unfiltered
one does instead of every full rollup row of its range (issue 19). Kept per ISO week for
every other dimension, and per day and week for '' (the filter's own total: its per-day
series and backlog, the same figures as the one-dimension slice of that value). Filled
from the rollups already there; the applier keeps them from then on."""
import datetime as dt
import math

from django.db import migrations, models

EXACT_MAX = 200
DIMS = ("channel", "account", "queue", "team", "agent")

# Also run by the bench (bench/reports.py) after it builds the one-dimension slices.
# The filter's own total: a copy of its one-dimension slice rows (days and weeks).
FILTER_TOTALS_SQL = """
INSERT INTO reports_metricslice (grain, bucket, metric, fdim, fkey, dim, key, count, total, "values", hist)
SELECT grain, bucket, metric, dim, key, '', '', count, total, "values", hist
FROM reports_metricslice WHERE fdim = '' AND dim <> ''
"""

# Every other dimension per week, from the day rollup rows: each unordered pair of
# dimensions is summed once and written both ways (team 2 by agent 7 is agent 7 by team 2).
# One statement a pair: one statement for all ten spilled ~18 GB to disk on the bench set.
PAIRS = [("channel", "account"), ("channel", "queue"), ("channel", "team"), ("channel", "agent"),
         ("account", "queue"), ("account", "team"), ("account", "agent"), ("queue", "team"), ("queue", "agent"),
         ("team", "agent")]
COLUMNS = {"channel": "channel", "account": "account_id::text", "queue": "queue_id::text", "team": "team_id::text",
           "agent": "agent_id::text"}
FILTER_WEEK_PAIR_SQL = """
WITH d AS NOT MATERIALIZED (
  SELECT (date_trunc('week', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, metric, {x} AS xk, {y} AS yk,
         count, total, "values"
  FROM reports_metricrollup WHERE grain = 'd'
), agg AS (
  SELECT bucket, metric, xk, yk, sum(count) AS count, sum(total) AS total FROM d GROUP BY 1, 2, 3, 4
), vals AS MATERIALIZED (
  SELECT bucket, metric, xk, yk, v::float AS v FROM d CROSS JOIN LATERAL jsonb_array_elements_text(d."values") v
  WHERE jsonb_array_length(d."values") > 0
), hist AS (
  SELECT bucket, metric, xk, yk, jsonb_object_agg(b::text, n) AS hist FROM (
    SELECT bucket, metric, xk, yk, CASE WHEN v < 1 THEN 0 ELSE floor(ln(v) / ln(1.05))::int + 1 END AS b,
           count(*) AS n FROM vals GROUP BY 1, 2, 3, 4, 5) x
  GROUP BY 1, 2, 3, 4
), exact AS (
  SELECT v.bucket, v.metric, v.xk, v.yk, jsonb_agg(v.v ORDER BY v.v) AS vs
  FROM vals v JOIN agg USING (bucket, metric, xk, yk) WHERE agg.count <= 200 GROUP BY 1, 2, 3, 4
), r AS (
  SELECT agg.*, coalesce(exact.vs, '[]') AS vs, coalesce(hist.hist, '{{}}') AS hist
  FROM agg LEFT JOIN hist USING (bucket, metric, xk, yk) LEFT JOIN exact USING (bucket, metric, xk, yk)
)
INSERT INTO reports_metricslice (grain, bucket, metric, fdim, fkey, dim, key, count, total, "values", hist)
SELECT 'w', bucket, metric, '{xd}', xk, '{yd}', yk, count, total, vs, hist FROM r
UNION ALL SELECT 'w', bucket, metric, '{yd}', yk, '{xd}', xk, count, total, vs, hist FROM r
"""
FILTER_WEEKS_SQL = [FILTER_WEEK_PAIR_SQL.format(x=COLUMNS[x], y=COLUMNS[y], xd=x, yd=y) for x, y in PAIRS]


def _bin(value):
    return 0 if value < 1 else int(math.floor(math.log(value) / math.log(1.05))) + 1


def unfill(apps, schema_editor):
    apps.get_model("reports", "MetricSlice").objects.exclude(fdim="").delete()


def fill(apps, schema_editor):
    MetricSlice = apps.get_model("reports", "MetricSlice")
    if MetricSlice.objects.exclude(fdim="").exists():  # built by other means: kept
        return
    if schema_editor.connection.vendor == "postgresql":  # set-based: large tables in minutes
        schema_editor.execute("SET LOCAL work_mem = '256MB'")
        schema_editor.execute(FILTER_TOTALS_SQL)
        for sql in FILTER_WEEKS_SQL:
            schema_editor.execute(sql)
        return
    MetricRollup = apps.get_model("reports", "MetricRollup")
    MetricSlice.objects.bulk_create([
        MetricSlice(grain=r.grain, bucket=r.bucket, metric=r.metric, fdim=r.dim, fkey=r.key, dim="", key="",
                    count=r.count, total=r.total, values=r.values, hist=r.hist)
        for r in MetricSlice.objects.filter(fdim="").exclude(dim="").iterator(chunk_size=2000)], batch_size=1000)
    weeks = {}
    for r in MetricRollup.objects.filter(grain="d").iterator(chunk_size=2000):
        week = r.bucket.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        week -= dt.timedelta(days=week.weekday())
        keys = dict(zip(DIMS, (r.channel, str(r.account_id), str(r.queue_id), str(r.team_id), str(r.agent_id))))
        for fdim in DIMS:
            for dim in DIMS:
                if dim == fdim:
                    continue
                row = weeks.setdefault((week, r.metric, fdim, keys[fdim], dim, keys[dim]), [0, 0.0, [], {}])
                row[0] += r.count
                row[1] += r.total
                row[2].extend(r.values or [])
                for v in r.values or []:
                    b = str(_bin(v))
                    row[3][b] = row[3].get(b, 0) + 1
    MetricSlice.objects.bulk_create(
        [MetricSlice(grain="w", bucket=week, metric=metric, fdim=fdim, fkey=fkey, dim=dim, key=key, count=count,
                     total=total, hist=hist, values=sorted(values) if count <= EXACT_MAX else [])
         for (week, metric, fdim, fkey, dim, key), (count, total, values, hist) in weeks.items()], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0009_metric_slice_weeks'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='metricslice',
            name='uniq_metric_slice_grain',
        ),
        migrations.RemoveIndex(
            model_name='metricslice',
            name='slice_grain_dim_metric_bucket',
        ),
        migrations.AddField(
            model_name='metricslice',
            name='fdim',
            field=models.CharField(blank=True, db_default='', default='', help_text="'' (no filter), channel, account, queue, team, agent", max_length=8),
        ),
        migrations.AddField(
            model_name='metricslice',
            name='fkey',
            field=models.CharField(blank=True, db_default='', default='', max_length=32),
        ),
        migrations.AddIndex(
            model_name='metricslice',
            index=models.Index(fields=['grain', 'fdim', 'fkey', 'dim', 'metric', 'bucket'], name='slice_filter_dim_metric_bucket'),
        ),
        migrations.AddConstraint(
            model_name='metricslice',
            constraint=models.UniqueConstraint(fields=('grain', 'fdim', 'fkey', 'metric', 'bucket', 'dim', 'key'), name='uniq_metric_slice_filter'),
        ),
        migrations.RunPython(fill, unfill),
    ]

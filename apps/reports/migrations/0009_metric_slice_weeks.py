"""Week slices (MetricSlice.grain = "w"): a long report range reads its whole ISO
weeks (UTC, from Monday) and the days at its ends instead of every day. Existing
installations get them from the day slices already there: counts and sums added
up, histograms merged, exact values kept while a week has at most EXACT_MAX
(200) of them (then every day in it had all of its own)."""
import datetime as dt

from django.db import migrations, models

EXACT_MAX = 200

# Also run by the bench (bench/reports.py) after it builds the day slices with SQL.
WEEK_SLICES_SQL = """
WITH d AS (
  SELECT (date_trunc('week', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS week, metric, dim, key, count, total,
         "values", hist
  FROM reports_metricslice WHERE grain = 'd'
), agg AS (
  SELECT week, metric, dim, key, sum(count) AS count, sum(total) AS total FROM d GROUP BY 1, 2, 3, 4
), hist AS (
  SELECT week, metric, dim, key, jsonb_object_agg(b, n) AS hist FROM (
    SELECT d.week, d.metric, d.dim, d.key, h.key AS b, sum(h.value::int) AS n
    FROM d CROSS JOIN LATERAL jsonb_each_text(d.hist) h GROUP BY 1, 2, 3, 4, 5) x
  GROUP BY 1, 2, 3, 4
), exact AS (
  SELECT d.week, d.metric, d.dim, d.key, jsonb_agg(v ORDER BY v::float8) AS vs
  FROM d JOIN agg USING (week, metric, dim, key) CROSS JOIN LATERAL jsonb_array_elements(d."values") v
  WHERE agg.count <= 200 GROUP BY 1, 2, 3, 4
)
INSERT INTO reports_metricslice (grain, bucket, metric, dim, key, count, total, "values", hist)
SELECT 'w', agg.week, agg.metric, agg.dim, agg.key, agg.count, agg.total, coalesce(exact.vs, '[]'),
       coalesce(hist.hist, '{}')
FROM agg LEFT JOIN hist USING (week, metric, dim, key) LEFT JOIN exact USING (week, metric, dim, key)
"""


def unfill(apps, schema_editor):
    apps.get_model("reports", "MetricSlice").objects.filter(grain="w").delete()


def fill(apps, schema_editor):
    MetricSlice = apps.get_model("reports", "MetricSlice")
    if MetricSlice.objects.filter(grain="w").exists():  # built by other means: kept
        return
    if schema_editor.connection.vendor == "postgresql":  # set-based: large tables in seconds
        schema_editor.execute(WEEK_SLICES_SQL)
        return
    weeks = {}
    for r in MetricSlice.objects.filter(grain="d").iterator(chunk_size=2000):
        week = r.bucket.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        week -= dt.timedelta(days=week.weekday())
        row = weeks.setdefault((week, r.metric, r.dim, r.key), [0, 0.0, [], {}])
        row[0] += r.count
        row[1] += r.total
        row[2].extend(r.values or [])
        for b, n in (r.hist or {}).items():
            row[3][b] = row[3].get(b, 0) + n
    MetricSlice.objects.bulk_create(
        [MetricSlice(grain="w", bucket=week, metric=metric, dim=dim, key=key, count=count, total=total, hist=hist,
                     values=sorted(values) if count <= EXACT_MAX else [])
         for (week, metric, dim, key), (count, total, values, hist) in weeks.items()], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0008_rollup_cache_epoch'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='metricslice',
            name='uniq_metric_slice',
        ),
        migrations.RemoveIndex(
            model_name='metricslice',
            name='slice_dim_metric_bucket',
        ),
        migrations.AddField(
            model_name='metricslice',
            name='grain',
            field=models.CharField(choices=[('d', 'Day'), ('w', 'Week')], db_default='d', default='d', max_length=1),
        ),
        migrations.AlterField(
            model_name='metricslice',
            name='bucket',
            field=models.DateTimeField(help_text='UTC day, or the Monday of a UTC week'),
        ),
        migrations.AddIndex(
            model_name='metricslice',
            index=models.Index(fields=['grain', 'dim', 'metric', 'bucket'], name='slice_grain_dim_metric_bucket'),
        ),
        migrations.AddConstraint(
            model_name='metricslice',
            constraint=models.UniqueConstraint(fields=('grain', 'metric', 'bucket', 'dim', 'key'), name='uniq_metric_slice_grain'),
        ),
        migrations.RunPython(fill, unfill),
    ]

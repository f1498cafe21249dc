"""Hour slices (MetricSlice.grain = "h"): an hour's total per metric, unfiltered and for
each channel, account, queue and team value (issue 19). A local day in a zone other than
UTC is its nearest UTC day plus or minus the hours between the two midnights; those hours
came from the full hour rollup rows (every combination: 1,200 rows an hour on the bench
set); they now come from these (a row per metric and value). Filled from the hour rollup
rows already there; the applier keeps them from then on."""
import math

from django.db import migrations, models

EXACT_MAX = 200
FILTERS = ("", "channel", "account", "queue", "team")

# Also run by the bench (bench/reports.py). The hour rows summed over agents first (a
# handful of combinations an hour), then each filter's value.
HOUR_SLICES_SQL = """
WITH h AS (
  SELECT bucket, metric, channel AS c, account_id::text AS a, queue_id::text AS q, team_id::text AS t,
         sum(count) AS count, sum(total) AS total,
         jsonb_agg("values") FILTER (WHERE jsonb_array_length("values") > 0) AS vs
  FROM reports_metricrollup WHERE grain = 'h' GROUP BY 1, 2, 3, 4, 5, 6
), s AS NOT MATERIALIZED (
  SELECT bucket, metric, f.fdim, f.fkey, count, total, vs
  FROM h CROSS JOIN LATERAL (VALUES ('', ''), ('channel', c), ('account', a), ('queue', q), ('team', t)) AS f(fdim, fkey)
), agg AS (
  SELECT bucket, metric, fdim, fkey, sum(count) AS count, sum(total) AS total FROM s GROUP BY 1, 2, 3, 4
), vals AS NOT MATERIALIZED (
  SELECT s.bucket, s.metric, s.fdim, s.fkey, v::float AS v
  FROM s CROSS JOIN LATERAL jsonb_array_elements(s.vs) l CROSS JOIN LATERAL jsonb_array_elements_text(l) v
  WHERE s.vs IS NOT NULL
), hist AS (
  SELECT bucket, metric, fdim, fkey, jsonb_object_agg(b::text, n) AS hist FROM (
    SELECT bucket, metric, fdim, fkey, CASE WHEN v < 1 THEN 0 ELSE floor(ln(v) / ln(1.05))::int + 1 END AS b,
           count(*) AS n FROM vals GROUP BY 1, 2, 3, 4, 5) x
  GROUP BY 1, 2, 3, 4
), exact AS (
  SELECT v.bucket, v.metric, v.fdim, v.fkey, jsonb_agg(v.v ORDER BY v.v) AS vs
  FROM vals v JOIN agg USING (bucket, metric, fdim, fkey) WHERE agg.count <= 200 GROUP BY 1, 2, 3, 4
)
INSERT INTO reports_metricslice (grain, bucket, metric, fdim, fkey, dim, key, count, total, "values", hist)
SELECT 'h', agg.bucket, agg.metric, agg.fdim, agg.fkey, '', '', agg.count, agg.total, coalesce(exact.vs, '[]'),
       coalesce(hist.hist, '{}')
FROM agg LEFT JOIN hist USING (bucket, metric, fdim, fkey) LEFT JOIN exact USING (bucket, metric, fdim, fkey)
"""


def _bin(value):
    return 0 if value < 1 else int(math.floor(math.log(value) / math.log(1.05))) + 1


def unfill(apps, schema_editor):
    apps.get_model("reports", "MetricSlice").objects.filter(grain="h").delete()


def fill(apps, schema_editor):
    MetricSlice = apps.get_model("reports", "MetricSlice")
    if MetricSlice.objects.filter(grain="h").exists():  # built by other means: kept
        return
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL work_mem = '256MB'")
        schema_editor.execute(HOUR_SLICES_SQL)
        return
    hours = {}
    for r in apps.get_model("reports", "MetricRollup").objects.filter(grain="h").iterator(chunk_size=2000):
        cells = {"": "", "channel": r.channel, "account": str(r.account_id), "queue": str(r.queue_id),
                 "team": str(r.team_id)}
        for fdim in FILTERS:
            row = hours.setdefault((r.bucket, r.metric, fdim, cells[fdim]), [0, 0.0, [], {}])
            row[0] += r.count
            row[1] += r.total
            row[2].extend(r.values or [])
            for v in r.values or []:
                b = str(_bin(v))
                row[3][b] = row[3].get(b, 0) + 1
    MetricSlice.objects.bulk_create(
        [MetricSlice(grain="h", bucket=bucket, metric=metric, fdim=fdim, fkey=fkey, dim="", key="", count=count,
                     total=total, hist=hist, values=sorted(values) if count <= EXACT_MAX else [])
         for (bucket, metric, fdim, fkey), (count, total, values, hist) in hours.items()], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0010_metric_slice_filters'),
    ]

    operations = [
        migrations.AlterField(
            model_name='metricslice',
            name='grain',
            field=models.CharField(choices=[('d', 'Day'), ('w', 'Week'), ('h', 'Hour')], db_default='d', default='d', max_length=1),
        ),
        migrations.RunPython(fill, unfill),
    ]

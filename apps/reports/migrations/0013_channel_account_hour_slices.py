"""Channel-and-account hour slices (MetricSlice grain "h", dim "chan_acc", key "<channel>|<account
id>"): the sentiment counts of an hour per channel and account, unfiltered and for each channel,
account, queue and team value (issue 19). The marketing report's per-day series by channel and by
account sum them per local day in one GROUP BY; under a filter they summed the filter's every full
hour row (a team over 90 days: ~520k rows, a parallel scan of the whole rollup table, 1.5 s). The
key holds a channel and an id: 64 characters. Filled from the hour rollup rows already there; the
applier keeps them from then on."""
from django.db import migrations, models

CHANNEL_ACCOUNT = "chan_acc"
METRICS = ("msg_in", "sentiment", "msg_in_positive", "msg_in_negative", "msg_in_neutral")
FILTERS = ("", "channel", "account", "queue", "team")

# Also run by the bench (bench/reports.py). The hour rows summed over agents first, then each
# filter's value (no values or histograms: these metrics are counts and sums). Written in the
# order they are read (a filter's metric over a range of hours): in any other order 90 days'
# ~43k rows sat on as many pages (0.23 s to read instead of ~0.03).
CHANNEL_ACCOUNT_SLICES_SQL = """
WITH h AS (
  SELECT bucket, metric, channel AS c, account_id::text AS a, queue_id::text AS q, team_id::text AS t,
         sum(count) AS count, sum(total) AS total
  FROM reports_metricrollup WHERE grain = 'h' AND metric IN ('msg_in', 'sentiment', 'msg_in_positive',
                                                             'msg_in_negative', 'msg_in_neutral')
  GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO reports_metricslice (grain, bucket, metric, fdim, fkey, dim, key, count, total, "values", hist)
SELECT 'h', bucket, metric, f.fdim, f.fkey, 'chan_acc', c || '|' || a, sum(count), sum(total), '[]', '{}'
FROM h CROSS JOIN LATERAL (VALUES ('', ''), ('channel', c), ('account', a), ('queue', q), ('team', t)) AS f(fdim, fkey)
GROUP BY bucket, metric, f.fdim, f.fkey, c, a
ORDER BY f.fdim, f.fkey, metric, bucket
"""


def unfill(apps, schema_editor):
    apps.get_model("reports", "MetricSlice").objects.filter(grain="h", dim=CHANNEL_ACCOUNT).delete()


def fill(apps, schema_editor):
    MetricSlice = apps.get_model("reports", "MetricSlice")
    if MetricSlice.objects.filter(grain="h", dim=CHANNEL_ACCOUNT).exists():  # built by other means: kept
        return
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL work_mem = '256MB'")
        schema_editor.execute(CHANNEL_ACCOUNT_SLICES_SQL)
        return
    hours = {}
    for r in apps.get_model("reports", "MetricRollup").objects.filter(grain="h", metric__in=METRICS).iterator(
            chunk_size=2000):
        cells = {"": "", "channel": r.channel, "account": str(r.account_id), "queue": str(r.queue_id),
                 "team": str(r.team_id)}
        for fdim in FILTERS:
            row = hours.setdefault((r.bucket, r.metric, fdim, cells[fdim], f"{r.channel}|{r.account_id}"), [0, 0.0])
            row[0] += r.count
            row[1] += r.total
    MetricSlice.objects.bulk_create(
        [MetricSlice(grain="h", bucket=bucket, metric=metric, fdim=fdim, fkey=fkey, dim=CHANNEL_ACCOUNT, key=key,
                     count=count, total=total, hist={}, values=[])
         for (bucket, metric, fdim, fkey, key), (count, total) in hours.items()], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0012_fact_shift_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='metricslice',
            name='key',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(fill, unfill),
    ]

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


def fill(apps, schema_editor):
    MetricRollup = apps.get_model("reports", "MetricRollup")
    MetricSlice = apps.get_model("reports", "MetricSlice")
    TermRollup = apps.get_model("reports", "TermRollup")
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

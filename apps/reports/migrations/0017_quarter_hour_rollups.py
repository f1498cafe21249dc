"""Quarter-hour rows (grain "q") in the metric rollups, the hour-shaped slices and the term
rollups (issue 22, item 3): a local midnight that is not a whole UTC hour (India +5:30,
Nepal +5:45, Newfoundland -3:30/-2:30, South Australia +9:30/+10:30) splits an hour, whose
events were all given to the local day the hour starts in. Reads now take the quarters of
such an hour instead (docs/reports.md, "Time zones").

The quarter rows of the events already applied are built from the events here (the hour
rows cannot be split): the applier's own code, quarter grain only, once. A database with
no applied events has nothing to build."""
from django.db import migrations, models

# the applier's increments (what each event adds to which metric), so the quarters match
# the hour and day rows exactly
from apps.reports import rollups


def fill(apps, schema_editor):
    MetricEvent = apps.get_model("reports", "MetricEvent")
    if not MetricEvent.objects.filter(rolled_up=True).exists():
        return
    rollups.quarter_rows_backfill()


def unfill(apps, schema_editor):
    for model in ("MetricRollup", "MetricSlice", "TermRollup"):
        apps.get_model("reports", model).objects.filter(grain="q").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0016_spam_marks_for_spam_conversations'),
    ]

    operations = [
        migrations.AlterField(
            model_name='metricrollup',
            name='grain',
            field=models.CharField(choices=[('h', 'Hour'), ('d', 'Day'), ('q', 'Quarter hour')], max_length=1),
        ),
        migrations.AlterField(
            model_name='metricslice',
            name='grain',
            field=models.CharField(choices=[('d', 'Day'), ('w', 'Week'), ('h', 'Hour'), ('q', 'Quarter hour')],
                                   db_default='d', default='d', max_length=1),
        ),
        migrations.AlterField(
            model_name='termrollup',
            name='grain',
            field=models.CharField(choices=[('h', 'Hour'), ('d', 'Day'), ('q', 'Quarter hour')], default='h',
                                   max_length=1),
        ),
        migrations.RunPython(fill, unfill),
    ]

"""The routing marker keeps when its message arrived and the request that brought it: routing
records the arrival -> routed latency and logs the request ids it routed. Markers in flight at
the migration take its time (a column default is evaluated once for existing rows)."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0005_queue_one_default_per_team'),
    ]

    operations = [
        migrations.AddField(
            model_name='unroutedmessage',
            name='arrived_at',
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.AddField(
            model_name='unroutedmessage',
            name='request_id',
            field=models.CharField(blank=True, db_default='', max_length=64),
        ),
    ]

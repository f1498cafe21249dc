"""A push delivery keeps the request id of the webhook request that stored it (logged by ingest)."""

import apps.core.request_id
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('connectors', '0004_push_delivery_pending_order'),
    ]

    operations = [
        migrations.AddField(
            model_name='pushdelivery',
            name='request_id',
            field=models.CharField(blank=True, db_default='', default=apps.core.request_id.request_id_current, max_length=64),
        ),
    ]

"""The routed marker moves off the message (UnroutedMessage): the customer
messages routing has not scored yet (sentiment_label empty, what the partial
index msg_unrouted covered) become its rows, so the sweep still finds them.
inbox 0008 then drops msg_unrouted."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0007_message_unrouted_index'),
        ('routing', '0002_rules_sla_hours_state'),
    ]

    operations = [
        migrations.CreateModel(
            name='UnroutedMessage',
            fields=[
                ('message', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='inbox.message')),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO routing_unroutedmessage (message_id) SELECT id FROM inbox_message "
            "WHERE direction = 'in' AND sentiment_label = ''",
            migrations.RunSQL.noop,
        ),
    ]

"""msg_unrouted (customer messages with no sentiment_label) is replaced by
routing.UnroutedMessage: scores are now written with the message at ingest, and
an index on sentiment_label kept routing's message UPDATE from being HOT."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0007_message_unrouted_index'),
        ('routing', '0003_unrouted_message'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='message', name='msg_unrouted'),
    ]

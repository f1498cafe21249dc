"""Conversations already spam get their "spam" mark (metric event), so the rollups take what
was counted of them out at the next apply, as for a conversation marked from now on
(docs/reports.md, "Spam"). Their messages the reports task skipped while they were spam are
not recorded again: unmarking one of them counts what was recorded."""
from django.db import migrations
from django.utils import timezone


def spam_marks(apps, schema_editor):
    Conversation = apps.get_model("inbox", "Conversation")
    MetricEvent = apps.get_model("reports", "MetricEvent")
    marked = set(MetricEvent.objects.filter(kind__in=("spam", "unspam")).values_list("conversation_id", flat=True))
    now = timezone.now()
    rows = []
    for pk, customer_id, account_id, provider in (Conversation.objects.filter(is_spam=True).values_list(
            "pk", "customer_id", "channel_account_id", "channel_account__provider").iterator()):
        if pk not in marked:
            rows.append(MetricEvent(key=f"spam:{pk}:existing", kind="spam", occurred_at=now, conversation_id=pk,
                                    customer_id=customer_id or 0, account_id=account_id or 0, channel=provider or ""))
        if len(rows) >= 1000:
            MetricEvent.objects.bulk_create(rows, ignore_conflicts=True)
            rows = []
    MetricEvent.objects.bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0015_alert_acknowledgements"),
        ("inbox", "0013_conversation_latest_text"),
    ]

    operations = [migrations.RunPython(spam_marks, migrations.RunPython.noop)]

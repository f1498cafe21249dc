"""The Queue model is the inbox's now (inbox 0012): routing's keys point there and its own model
goes, in state only; the table and its rows stay. The content type follows, so permissions and
admin history on queues keep their rows."""
import django.db.models.deletion
from django.db import migrations, models


def content_type_follows(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="inbox", model="queue").exists():
        ContentType.objects.filter(app_label="routing", model="queue").update(app_label="inbox")


def content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="routing", model="queue").exists():
        ContentType.objects.filter(app_label="inbox", model="queue").update(app_label="routing")


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('inbox', '0012_queue_moves_to_inbox'),
        ('routing', '0006_unrouted_arrival'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='routingrule',
                    name='set_queue',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='inbox.queue'),
                ),
                migrations.AlterField(
                    model_name='slapolicy',
                    name='queue',
                    field=models.ForeignKey(blank=True, help_text='Empty: every queue', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='sla_policies', to='inbox.queue'),
                ),
                migrations.AlterField(
                    model_name='queuememberstate',
                    name='queue',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.queue'),
                ),
                migrations.DeleteModel(name='Queue'),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_follows, content_type_back),
    ]

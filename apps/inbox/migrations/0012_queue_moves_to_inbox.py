"""The Queue model moves from routing to the inbox (issue 20: a conversation's queue sits below
routing). State only: the table keeps its name (routing_queue), its rows, ids, constraint and
every foreign key to it; routing 0007 points its own keys here and drops its model."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_audit_tokens_presence_capacity'),
        ('inbox', '0011_message_next_attempt_client_token'),
        ('routing', '0006_unrouted_arrival'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Queue',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, unique=True)),
                        ('assignment_mode', models.CharField(choices=[('manual', 'Manual'), ('round_robin', 'Round robin'), ('least_loaded', 'Least loaded')], default='manual', max_length=16)),
                        ('is_default', models.BooleanField(default=False, help_text='Where conversations go when no rule picks a queue')),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='queues', to='accounts.team')),
                    ],
                    options={
                        'db_table': 'routing_queue',
                        'ordering': ['name'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('is_default', True)), fields=('team',), name='uniq_default_queue_per_team')],
                    },
                ),
                migrations.AlterField(
                    model_name='conversation',
                    name='queue',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='inbox.queue'),
                ),
            ],
            database_operations=[],
        ),
    ]

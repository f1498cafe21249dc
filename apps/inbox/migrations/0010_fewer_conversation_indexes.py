"""Drops the single-column indexes that a composite index already leads with
(conv_assignee_status, conv_customer_open, conv_queue_status, conv_inbox_order,
msg_thread_order) or that no query reads (external_thread_id, always looked up
with the identity; the `_like` pattern indexes). Every one was written by each
conversation INSERT and each UPDATE changing its column (docs/performance-history.md
item 33).

Only the indexes are dropped: AlterField(db_index=False) would also drop and re-add
each foreign key, revalidating every row of the table (5M messages) under lock.
Names are read from the database, as Django's differ between backends."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# table -> the columns whose own (single-column) indexes go
DROPPED = {
    "inbox_conversation": ["assignee_id", "customer_id", "external_thread_id", "queue_id", "status"],
    "inbox_message": ["conversation_id"],
}


def _single_column_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return sorted(name for name, info in constraints.items()
                  if info["index"] and not info["unique"] and not info["primary_key"]
                  and info["columns"] == [column])


def drop_indexes(apps, schema_editor):
    for table, columns in DROPPED.items():
        for column in columns:
            for name in _single_column_indexes(schema_editor, table, column):
                schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_indexes(apps, schema_editor):
    for table, columns in DROPPED.items():
        for column in columns:
            if not _single_column_indexes(schema_editor, table, column):
                name = schema_editor.quote_name(f"{table}_{column}_idx")
                schema_editor.execute(f"CREATE INDEX {name} ON {schema_editor.quote_name(table)} "
                                      f"({schema_editor.quote_name(column)})")


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0001_initial'),
        ('inbox', '0009_no_fk_check_on_hot_children'),
        ('routing', '0004_no_fk_check_on_hot_children'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='conversation',
                    name='assignee',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='assigned_conversations', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='conversation',
                    name='customer',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='conversations', to='contacts.customer'),
                ),
                migrations.AlterField(
                    model_name='conversation',
                    name='external_thread_id',
                    field=models.CharField(blank=True, max_length=255),
                ),
                migrations.AlterField(
                    model_name='conversation',
                    name='queue',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='routing.queue'),
                ),
                migrations.AlterField(
                    model_name='conversation',
                    name='status',
                    field=models.CharField(choices=[('new', 'New'), ('open', 'Open'), ('pending', 'Pending'), ('resolved', 'Resolved'), ('closed', 'Closed')], default='new', max_length=16),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='conversation',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='inbox.conversation'),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]

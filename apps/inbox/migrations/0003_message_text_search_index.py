"""Full-text search over message text, on PostgreSQL only (SQLite searches with
icontains). The expression is exactly what SearchVector("text", config="simple")
renders, so the planner uses the index."""
from django.db import migrations

INDEX = "msg_text_fts"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON inbox_message "
        "USING gin (to_tsvector('simple'::regconfig, COALESCE(text, '')))"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0002_read_marks_notifications")]
    operations = [migrations.RunPython(create, drop)]

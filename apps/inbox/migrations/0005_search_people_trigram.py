"""Search by a customer's handle or name without reading every identity: trigram
GIN indexes on exactly what `handle__istartswith` / `display_name__icontains`
render (UPPER(col::text) LIKE UPPER(...)). PostgreSQL only; a no-op on SQLite,
which searches with a scan."""
from django.db import migrations

INDEXES = {
    "ident_handle_trgm": "UPPER((handle)::text) gin_trgm_ops",
    "ident_name_trgm": "UPPER((display_name)::text) gin_trgm_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON contacts_socialidentity USING gin ({expression})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_inbox_open_order_index"), ("contacts", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]

"""System checks on the database a deployment runs (`manage.py migrate` runs them, as does
`manage.py check --database default`).

PostgreSQL's autovacuum is what keeps the hot tables' dead rows cleared and their planner
statistics current. With it off, an inbox that grows from empty keeps the plans of its empty
tables and every dead row of every update: on 2 cores under 100 mentions/s, two-minute runs gave
the list page a p95 of 90-94 ms against 64-69 ms with it on, and the take of pending push
deliveries read 20,000 dead pages a take after five minutes at 200/s
(docs/performance-history.md). Nothing in the product turns it off; a server configured without
it (or a table with autovacuum_enabled = false) gets a warning at deploy instead of a slow inbox
found later."""
from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import connections

AUTOVACUUM_OFF = "cxinbox.W001"
TABLE_AUTOVACUUM_OFF = "cxinbox.W002"


@register(Tags.database)
def postgres_autovacuum_check(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    found = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            server = cursor.fetchone()[0]
            # this database's own tables whose reloptions turn it off
            cursor.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                           "AND 'autovacuum_enabled=false' = ANY (c.reloptions) ORDER BY c.relname")
            tables = [name for (name,) in cursor.fetchall()]
        if server != "on":
            found.append(Warning(
                f"PostgreSQL's autovacuum is {server} on the server of database '{alias}'.",
                hint="Turn it on (autovacuum = on in postgresql.conf, the default): without it the inbox's tables "
                     "keep their dead rows and stale planner statistics, and the pages and the push edge slow "
                     "down as they grow (docs/operations.md, production checklist).",
                id=AUTOVACUUM_OFF))
        if tables:
            found.append(Warning(
                f"Autovacuum is off for {len(tables)} table(s) of database '{alias}': {', '.join(tables[:10])}"
                + (", ..." if len(tables) > 10 else "") + ".",
                hint="ALTER TABLE <table> RESET (autovacuum_enabled); (docs/operations.md, production checklist).",
                id=TABLE_AUTOVACUUM_OFF))
    return found

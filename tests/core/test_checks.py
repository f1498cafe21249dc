"""The deploy-time warning about PostgreSQL's autovacuum (apps/core/checks.py): what
`manage.py check --database default` (and `migrate`) prints to an operator."""
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from apps.core.checks import AUTOVACUUM_OFF, TABLE_AUTOVACUUM_OFF, postgres_autovacuum_check

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")


def _check_output() -> str:
    out, err = StringIO(), StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def _server_autovacuum() -> str:
    """The server's setting, read over a connection of its own (not through the check)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None), params.pop("context", None)
    with psycopg.connect(**params) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0]


@on_postgres
def test_the_server_warning_says_what_the_server_runs():
    printed = _check_output()
    if _server_autovacuum() == "on":
        assert AUTOVACUUM_OFF not in printed
    else:  # this box's development server runs with it off: the operator is told so
        assert AUTOVACUUM_OFF in printed and "autovacuum is off" in printed


@on_postgres
def test_a_table_with_autovacuum_turned_off_is_named():
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE inbox_conversation SET (autovacuum_enabled = false)")
    printed = _check_output()
    assert TABLE_AUTOVACUUM_OFF in printed and "inbox_conversation" in printed
    assert "ALTER TABLE <table> RESET (autovacuum_enabled)" in printed

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE inbox_conversation RESET (autovacuum_enabled)")
    assert TABLE_AUTOVACUUM_OFF not in _check_output()


def test_without_a_database_named_nothing_is_queried():
    """`manage.py check` without --database (and every runserver/worker start) leaves it alone."""
    assert postgres_autovacuum_check(databases=None) == []


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the other vendors")
def test_other_databases_get_no_warning():
    assert postgres_autovacuum_check(databases=["default"]) == []

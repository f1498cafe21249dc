"""rows_update and rows_insert: bulk_update and bulk_create without their cost.

Django's `bulk_update` builds a `CASE WHEN pk=... THEN ...` expression per row and
field and resolves each one: a routing batch of 100 conversations x 16 fields
spent ~0.5 s of CPU there, more than everything else in the batch. This writes
the same rows with one statement and a handful of parameters: on PostgreSQL
`UPDATE ... FROM jsonb_to_recordset(%s)`, the rows sent as one JSON document
that the server turns into typed columns; on SQLite `UPDATE ... FROM (VALUES ...)`.
Values go through each field's `get_prep_value`, as `save()` does. Like
`bulk_update`, it calls no `save()`, sends no signals and sets no `auto_now`
field: set those on the objects first.

rows_insert is bulk_create for the same reason: Django inserts through
`UNNEST` of one array per column, and psycopg escapes each array element in
Python (JSON columns: every quote), several ms per 100 audit events."""
from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from contextlib import contextmanager

import orjson
from django.db import connections, router
from django.db.models.fields import DateTimeField

_DATETIME_PREP = DateTimeField.get_prep_value

_TEXT_TYPES = ("varchar", "char", "text")


def column_db_type(field, connection) -> str:
    """The column's type in the record (text for character types: the assignment
    casts to varchar(n) and refuses what is too long, as an UPDATE does)."""
    if field.get_internal_type() == "JSONField":
        return "jsonb"
    db_type = field.cast_db_type(connection) or "text"
    return "text" if db_type.split("(")[0].strip() in _TEXT_TYPES else db_type


def _json_default(value):
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()  # full precision, offset included
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"rows_update cannot send {type(value).__name__}")


def _rows_json(rows: list[dict]) -> str:
    """The rows as one JSON document. orjson, not json: the standard encoder called
    back into Python for every datetime and took ~3 ms for 500 message rows (~4% of
    a worker's CPU over a batch's inserts and updates); orjson writes datetimes
    (ISO 8601, microseconds and offset, as isoformat), UUIDs and enums itself in
    ~0.25 ms. Integer keys become strings, as json does; NaN becomes null (json
    wrote NaN, which PostgreSQL's jsonb refuses)."""
    return orjson.dumps(rows, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _prep(field, value):
    """The value as the JSON document carries it (a JSON field's own encoder, if any, applies)."""
    value = field.get_prep_value(value)
    if value is not None and getattr(field, "encoder", None) is not None:
        value = json.loads(json.dumps(value, cls=field.encoder))
    return value


def _value_types(field) -> tuple[type, ...]:
    """Python types that the field's get_prep_value returns unchanged: a value of
    one of them skips the call (it was ~40% of the CPU of writing a batch's rows)."""
    from django.db.models import fields as f
    from django.db.models.fields.json import JSONField
    from django.db.models.fields.related import ForeignKey

    target = field.target_field if isinstance(field, ForeignKey) else field
    prep = type(target).get_prep_value
    if prep is f.IntegerField.get_prep_value:
        return (int, type(None))  # not bool: int(True) is 1
    if prep is f.CharField.get_prep_value or prep is f.TextField.get_prep_value:
        return (str, type(None))
    if prep is f.BooleanField.get_prep_value:
        return (bool, type(None))
    if prep is f.FloatField.get_prep_value:
        return (float, type(None))
    if field is target and prep is f.Field.get_prep_value and isinstance(field, JSONField) and field.encoder is None:
        return (dict, list, str, int, float, bool, type(None))
    return ()


def _preparers(fields) -> list:
    """One value -> prepared value function per field, chosen once per statement."""
    out = []
    for field in fields:
        types = _value_types(field)
        if type(field).get_prep_value is _DATETIME_PREP:
            def prep(value, field=field):  # an aware datetime is returned as it is
                if value is None or (type(value) is dt.datetime and value.tzinfo is not None):
                    return value
                return _prep(field, value)
        elif types:
            def prep(value, field=field, types=types):
                return value if type(value) in types else _prep(field, value)
        else:
            def prep(value, field=field):
                return _prep(field, value)
        out.append(prep)
    return out


def rows_update(objs, fields: list[str], *, batch_size: int = 1000) -> int:
    """UPDATE the given fields of `objs` (model instances with a pk, all of one
    model) to the values they hold, in one statement per `batch_size` rows.
    Returns the number of rows updated."""
    objs = list(objs)
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in ("postgresql", "sqlite"):
        return model.objects.bulk_update(objs, fields, batch_size=batch_size)
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    q = connection.ops.quote_name
    table = q(meta.db_table)
    names = [q(pk.column), *(q(f.column) for f in columns)]
    sets = ", ".join(f"{name} = v.{name}" for name in names[1:])
    where = f"{table}.{names[0]} = v.{names[0]}"
    updated = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            record = ", ".join(f"{q(f.column)} {column_db_type(f, connection)}" for f in (pk, *columns))
            # The planner takes any jsonb_to_recordset for 100 rows and, on a table of some
            # 10-50k rows, updated 5 of them through a hash join over a scan of all (1.2-1.5 ms
            # where 0.1 does). The keys again as an array it can count, for the primary key index.
            sql = (f"UPDATE {table} SET {sets} FROM jsonb_to_recordset(%s::jsonb) AS v ({record}) "
                   f"WHERE {where} AND {table}.{names[0]} = ANY(%s::{column_db_type(pk, connection)}[])")
            spec = [(f.column, f.attname, prep) for f, prep in zip((pk, *columns), _preparers((pk, *columns)))]
            pk_prep = spec[0][2]
            for start in range(0, len(objs), batch_size):
                chunk = objs[start:start + batch_size]
                rows = [{column: prep(getattr(obj, attname)) for column, attname, prep in spec} for obj in chunk]
                cursor.execute(sql, [_rows_json(rows), [pk_prep(obj.pk) for obj in chunk]])
                updated += cursor.rowcount
            return updated
        # SQLite names the columns of a VALUES list column1, column2, ...
        sets = ", ".join(f"{name} = v.column{n}" for n, name in enumerate(names[1:], start=2))
        size = max(1, min(batch_size, (connection.features.max_query_params or 999) // (len(columns) + 1)))
        row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
        for start in range(0, len(objs), size):
            chunk = objs[start:start + size]
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
                f"WHERE {table}.{names[0]} = v.column1",
                [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in chunk for f in (pk, *columns)],
            )
            updated += cursor.rowcount
    return updated


def rows_insert(objs, *, ignore_conflicts: bool = False) -> list:
    """INSERT `objs` (new instances of one model) in one statement, setting their
    primary keys from RETURNING, as bulk_create does on PostgreSQL (defaults,
    auto_now/auto_now_add applied through each field's pre_save). With
    `ignore_conflicts`, rows that clash with a unique key are skipped and as
    many objects as were inserted are returned, without their keys. Other
    databases: bulk_create."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    meta = model._meta
    db = router.db_for_write(model)
    connection = connections[db]
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts)
    pk = meta.pk
    generated = pk.db_returning and all(getattr(obj, pk.attname) is None for obj in objs)
    fields = [f for f in meta.concrete_fields if not (generated and f is pk)]
    spec = list(zip(fields, _preparers(fields)))
    rows = [{f.column: prep(f.pre_save(obj, add=True)) for f, prep in spec} for obj in objs]
    returned = _json_rows_insert(connection, meta, fields, rows, ignore_conflicts=ignore_conflicts)
    if ignore_conflicts:
        return objs[:len(returned)]  # which ones is not known: RETURNING leaves the skipped rows out
    for obj, (value,) in zip(objs, returned):
        if generated:
            setattr(obj, pk.attname, value)
        obj._state.adding, obj._state.db = False, db
    return objs


def rows_insert_values(model, rows, *, ignore_conflicts: bool = False) -> list:
    """rows_insert for rows given as dicts ({attname: value}, "conversation_id"
    not "conversation"), with no model instances: building them (Model.__init__,
    then pre_save per field) was ~15% of ingest's and routing's CPU. A field a
    row leaves out gets its default, an auto_now / auto_now_add one the same
    current time for all rows. The primary key is generated. Returns the new
    keys in row order (with `ignore_conflicts`, as many as were inserted, which
    ones not known). Other databases: through rows_insert."""
    from django.utils import timezone

    rows = list(rows)
    if not rows:
        return []
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    pk = meta.pk
    fields = [f for f in meta.concrete_fields if f is not pk]
    unknown = set().union(*rows) - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))} to insert")
    if connection.vendor != "postgresql":
        return [obj.pk for obj in rows_insert([model(**row) for row in rows], ignore_conflicts=ignore_conflicts)]
    now = timezone.now()

    def default(field):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return lambda: now
        if field.has_default() and callable(field.default):
            return field.default
        value = field.get_default()
        return lambda: value

    spec = [(f.attname, f.column, default(f), prep) for f, prep in zip(fields, _preparers(fields))]
    values = [{column: prep(row[attname] if attname in row else make()) for attname, column, make, prep in spec}
              for row in rows]
    return [value for (value,) in _json_rows_insert(connection, meta, fields, values,
                                                     ignore_conflicts=ignore_conflicts)]


def _json_rows_insert(connection, meta, fields, rows: list[dict], *, ignore_conflicts: bool) -> list[tuple]:
    """One INSERT of prepared rows ({column: value}) as a JSON recordset; returns
    the new primary keys, one tuple per inserted row."""
    key = (connection.alias, meta.db_table, tuple(f.column for f in fields), ignore_conflicts)
    sql = _INSERT_SQL.get(key)
    if sql is None:  # the same few statements all day: each built once (~1 ms a routing batch)
        q = connection.ops.quote_name
        columns = ", ".join(q(f.column) for f in fields)
        record = ", ".join(f"{q(f.column)} {column_db_type(f, connection)}" for f in fields)
        sql = _INSERT_SQL[key] = (
            f"INSERT INTO {q(meta.db_table)} ({columns}) SELECT {columns} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS v ({record}) "
            f"{'ON CONFLICT DO NOTHING ' if ignore_conflicts else ''}RETURNING {q(meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [_rows_json(rows)])
        return cursor.fetchall()


_INSERT_SQL: dict[tuple, str] = {}


@contextmanager
def bitmap_scans_off(using: str = "default"):
    """Within a transaction: the queries inside are planned without bitmap scans (PostgreSQL;
    elsewhere nothing). For a take of the oldest pending rows through a partial index: a bitmap
    scan visits the heap tuple of every index entry, dead ones included, and never marks them
    dead in the index, so until a vacuum each take re-read every row that had been pending since
    the last vacuum (with autovacuum late or off, 20,478 heap pages and 139 ms a take after 5 minutes
    at 200 deliveries/s, and growing). An index scan marks what it finds dead (the next scan passes
    over it: 121 ms once, then 6). The setting is put back as it was for the rest of the transaction."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_bitmapscan'), set_config('enable_bitmapscan', 'off', true)")
        before = cursor.fetchone()[0]
    # On an error inside, nothing here: the rollback of the transaction (or of its savepoint) puts the
    # setting back, and a statement now could only fail in an aborted transaction, hiding the error.
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_bitmapscan', %s, true)", [before])


def commit_without_flush_wait(using: str = "default") -> None:
    """Lets the current transaction's commit return before its WAL reaches disk
    (PostgreSQL `SET LOCAL synchronous_commit TO off`; this transaction only). What
    it wrote is visible to everyone at once, as usual; only a server crash within
    ~3 x wal_writer_delay (600 ms by default) could undo it, never corrupt it, and
    any later synchronous commit flushes it along. So only for transactions whose
    work is redone from a record already on disk if it is lost: routing (the routing
    markers come back with the rollback, and the unrouted sweep routes them) and
    push-delivery ingest (the delivery stays pending for the sweep). Never for one
    holding the only copy of something (a webhook's delivery, a mention handed over
    in a task, an agent's reply). Saves the commit's wait for its WAL to be written
    and flushed: the worker moves on to the next batch meanwhile."""
    connection = connections[using]
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO off")

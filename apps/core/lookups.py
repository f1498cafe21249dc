"""`field__any=[...]`: membership in a list sent as one array parameter.

`__in` writes one placeholder per value. Our connections bind parameters on the
client (psycopg's ClientCursor, Django's default), so each of a batch's 500 ids
was quoted in Python and spliced into a query string too long for psycopg's
statement cache, which then parsed it again on every call: ~4% of a worker's CPU
over ingest's and routing's lookups. On PostgreSQL `__any` writes
`column = ANY(%s::type[])` with the list as one value; elsewhere it is `__in`."""
from __future__ import annotations

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In

from .db import column_db_type


def _array_type(field, connection) -> str:
    return f"{column_db_type(field, connection)}[]"


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        field = self.lhs.output_field
        return [field.get_prep_value(value) for value in self.rhs if value is not None]

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            return compiler.compile(In(self.lhs, self.rhs))
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{_array_type(self.lhs.output_field, connection)})", [*params, list(self.rhs)]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # related fields take only the lookups registered on them

"""The names a DuckDB load uses: its table, the rejects and the ledger beside it, quoted.

A table may be schema-qualified (`staging.results`): its rejects (`staging.results_rejects`)
and ledger (`staging._resultloader_loads`) are in the same schema, named with the database
too, since DuckDB reads `a.b` as database `a` if one is attached by that name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import duckdb

from .. import LEDGER, REJECTS_SUFFIX, split_table

# Internal tables live in DuckDB's `temp` catalog, always named with it: no user table (the
# check refuses target names starting with `_rl_`) is read, filled or dropped in their place.
INTERNAL_PREFIX = "_rl_"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Names:
    """`table` as given (the ledger's `target`); `schema` None: the connection's current one."""

    table: str
    schema: str | None
    name: str
    database: str = ""

    @classmethod
    def of(cls, table: str, con: duckdb.DuckDBPyConnection | None = None) -> Names:
        schema, name = split_table(check_table(table))
        database = ""
        if schema is not None and con is not None:
            row = con.execute("SELECT current_database()").fetchone()
            database = str(row[0]) if row else ""
        return cls(table, schema, name, database)

    def qualified(self, name: str) -> str:
        if self.schema is None:
            return quote(name)
        return ".".join(quote(part) for part in (self.database, self.schema, name) if part)

    @property
    def target(self) -> str:
        return self.qualified(self.name)

    @property
    def rejects(self) -> str:
        return self.qualified(self.name + REJECTS_SUFFIX)

    @property
    def ledger(self) -> str:
        return self.qualified(LEDGER)

    @property
    def schema_sql(self) -> str | None:
        if self.schema is None:
            return None
        return ".".join(quote(part) for part in (self.database, self.schema) if part)


def check_table(table: str) -> str:
    """A table name, schema-qualified or not, each part a plain identifier that DuckDB takes
    unquoted; the table not the ledger, nor one of resultloader's own."""
    schema, name = split_table(table)
    for part in (schema, name):
        if part is not None and part.lower() in _keywords():
            raise ValueError(
                f"invalid table name {table!r}: DuckDB reserves {part!r}; choose another name"
            )
    if name.lower() == LEDGER:
        raise ValueError(f"invalid table name {table!r}: DuckDB reserves it; choose another name")
    if name.lower().startswith(INTERNAL_PREFIX):
        raise ValueError(
            f"invalid table name {table!r}: names starting with {INTERNAL_PREFIX!r} are "
            "resultloader's own; choose another name"
        )
    return table


@functools.cache
def _keywords() -> frozenset[str]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT keyword_name FROM duckdb_keywords()"
            " WHERE keyword_category IN ('reserved', 'type_function')"
        ).fetchall()
    finally:
        con.close()
    return frozenset(r[0].lower() for r in rows)

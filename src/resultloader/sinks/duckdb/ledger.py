"""DuckDBSink's ledger and rejects: made ready for a load, and read back (re-runs, history)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa

from ..._errors import SinkError
from .. import LEDGER, LEDGER_COLUMNS, REJECTS_SUFFIX, CommittedLoad
from .names import Names, quote
from .sql import _LEDGER_DDL, TYPES

Database = str | os.PathLike[str] | duckdb.DuckDBPyConnection


@contextlib.contextmanager
def reading(database: Database) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The database to read: its connection, or its file opened read-only and closed after;
    None if there is no such file."""
    if isinstance(database, duckdb.DuckDBPyConnection):
        yield database
        return
    path = os.fspath(database)
    if not os.path.exists(path):
        yield None
        return
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise SinkError(f"{path}: cannot open the database: {exc}") from None
    try:
        yield con
    finally:
        con.close()


def columns(con: duckdb.DuckDBPyConnection, names: Names, table: str) -> set[str]:
    """The columns of `table` in `names`' schema (lower case); no such table: none."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns()"
        " WHERE database_name = coalesce(nullif(?, ''), current_database())"
        " AND schema_name = coalesce(?, current_schema()) AND lower(table_name) = lower(?)",
        [names.database, names.schema, table],
    ).fetchall()
    return {str(name).lower() for (name,) in rows}


def prepare_ledger(con: duckdb.DuckDBPyConnection, names: Names) -> None:
    """The ledger beside the table, made if new; columns an older one lacks are added."""
    con.execute(_LEDGER_DDL.format(ledger=names.ledger))
    found = columns(con, names, LEDGER)
    for name, kind in LEDGER_COLUMNS:
        if name not in found:
            con.execute(f"ALTER TABLE {names.ledger} ADD COLUMN {name} {TYPES[kind]}")


def finish_row(con: duckdb.DuckDBPyConnection, ledger: str, load_id: str, **values: Any) -> None:
    """Set the outcome of a load's ledger row: its status and counts, and when it ended."""
    values.setdefault("finished_at", datetime.now(timezone.utc).replace(tzinfo=None))
    sets = ", ".join(f"{name} = ?" for name in values)
    con.execute(f"UPDATE {ledger} SET {sets} WHERE load_id = ?", [*values.values(), load_id])


def committed_loads(database: Database, table: str) -> list[CommittedLoad]:
    """The committed loads into `table` in its ledger; none when there is no file or ledger
    yet. A ledger from before versions were kept gives none (its sources are loaded again
    rather than wrongly skipped)."""
    with reading(database) as con:
        if con is None:
            return []
        names = Names.of(table, con)
        if "version" not in columns(con, names, LEDGER):
            return []
        rows = con.execute(
            f"SELECT source, provider, version FROM {names.ledger}"
            " WHERE target = ? AND status = 'committed'",
            [table],
        ).fetchall()
        return [CommittedLoad(*row) for row in rows]


def read_ledger(database: Database) -> pa.Table | None:
    """Every load the database's ledgers hold, in whichever schema; None if it has none (or
    there is no file)."""
    with reading(database) as con:
        if con is None:
            return None
        schemas = con.execute(
            "SELECT DISTINCT schema_name FROM duckdb_tables()"
            " WHERE database_name = current_database() AND table_name = ? ORDER BY ALL",
            [LEDGER],
        ).fetchall()
        if not schemas:
            return None
        ledgers = [f"SELECT * FROM {quote(schema)}.{quote(LEDGER)}" for (schema,) in schemas]
        ledger: pa.Table = con.sql(" UNION ALL BY NAME ".join(ledgers)).to_arrow_table()
        return ledger


def read_rejects(database: Database, load: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rejects `load` kept, by line; none if its table has no rejects table."""
    try:
        names = Names.of(str(load.get("target") or ""))
    except ValueError:
        return []  # not a table name a load could have had
    with reading(database) as con:
        if con is None:
            return []
        names = Names.of(names.table, con)
        if not columns(con, names, names.name + REJECTS_SUFFIX):
            return []
        cursor = con.execute(
            f"SELECT line, byte_offset, reason, raw FROM {names.rejects}"
            " WHERE load_id = ? ORDER BY line",
            [load["load_id"]],
        )
        found = [d[0] for d in cursor.description or []]
        return [dict(zip(found, row, strict=True)) for row in cursor.fetchall()]


def read_columns(database: Database, table: str, wanted: Sequence[str]) -> pa.Table | None:
    """Every row of `table`, the columns among `wanted` it has; None if there is no table."""
    with reading(database) as con:
        if con is None:
            return None
        names = Names.of(table, con)
        found = columns(con, names, names.name)
        if not found:
            return None
        present = [name for name in wanted if name.lower() in found]
        if not present:
            return pa.table({})
        selected = ", ".join(quote(name) for name in present)
        rows: pa.Table = con.sql(f"SELECT {selected} FROM {names.target}").to_arrow_table()
        return rows

"""DuckDBSink's checks before a load touches the file, and its clearing of killed loads' rows."""

from __future__ import annotations

import functools
import os
from collections.abc import Collection
from datetime import datetime, timezone

import duckdb

from ..._errors import SinkError
from ..._names import check_name
from .. import CommittedLoad
from .sql import INTERNAL_PREFIX, LEDGER

# Loads running in this process: their ledger rows say 'running' and are not abandoned.
# (Other processes cannot hold the file: DuckDB lets one process open it for writing.)
ACTIVE_LOADS: set[str] = set()


def temp_directory(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    return str(row[0]) if row and row[0] else ""


def check_table(name: str) -> str:
    """A plain identifier that DuckDB will take unquoted as a table name, and not the ledger."""
    check_name("table", name)
    if name.lower() in _keywords() or name.lower() == LEDGER:
        raise ValueError(f"invalid table name {name!r}: DuckDB reserves it; choose another name")
    if name.lower().startswith(INTERNAL_PREFIX):
        raise ValueError(
            f"invalid table name {name!r}: names starting with {INTERNAL_PREFIX!r} are "
            "resultloader's own; choose another name"
        )
    return name


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


def check_target(con: duckdb.DuckDBPyConnection, table: str, ddl: str, where: str) -> None:
    """Refuse a target table that lacks a column the load fills, before anything is created.

    Columns are matched by name (their order does not matter); extra columns stay NULL.
    """
    found = _columns(con, table)
    if not found:
        return  # no such table yet: the load creates it
    missing = [name for name in _expected(ddl) if name not in found]
    if missing:
        raise SinkError(
            f"{where}: table {table!r} exists with other columns than a results table "
            f"(missing: {', '.join(missing)}); load into another --table, or rename that table"
        )


def mark_abandoned(con: duckdb.DuckDBPyConnection, active: Collection[str]) -> int:
    """Ledger rows still `running` whose load is not running: a killed process's. One process
    at a time can open the file for writing, so only this process's own loads (`active`) can
    be running. Marks them `abandoned`, noting when this was noticed; how many."""
    row = con.execute(
        f"SELECT count(*) FROM {LEDGER} WHERE status = 'running' AND NOT list_contains(?, load_id)",
        [list(active)],
    ).fetchone()
    if not row or not row[0]:
        return 0
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute(
        f"UPDATE {LEDGER} SET status = 'abandoned', finished_at = ?,"
        " error = 'the loading process ended without finishing (killed?); noticed at '"
        " || strftime(?, '%Y-%m-%d %H:%M:%S UTC')"
        " WHERE status = 'running' AND NOT list_contains(?, load_id)",
        [now, now, list(active)],
    )
    return int(row[0])


def committed_loads(
    database: str | os.PathLike[str] | duckdb.DuckDBPyConnection, table: str
) -> list[CommittedLoad]:
    """The committed loads into `table` in its ledger, reading a database file read-only;
    none when there is no file or ledger yet. A ledger from before versions were kept gives
    none (its sources are loaded again rather than wrongly skipped)."""
    con = database
    if not isinstance(con, duckdb.DuckDBPyConnection):
        if not os.path.exists(con):
            return []
        con = duckdb.connect(os.fspath(con), read_only=True)
    try:
        if "version" not in _columns(con, LEDGER):
            return []
        rows = con.execute(
            f"SELECT source, provider, version FROM {LEDGER}"
            " WHERE target = ? AND status = 'committed'",
            [table],
        ).fetchall()
        return [CommittedLoad(*row) for row in rows]
    finally:
        if con is not database:
            con.close()


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns of `table` where an unqualified name finds it (lower case); none: empty."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
        " AND schema_name = current_schema() AND lower(table_name) = lower(?)",
        [table],
    ).fetchall()
    return {str(name).lower() for (name,) in rows}


@functools.cache
def _expected(ddl: str) -> tuple[str, ...]:
    """The columns the DDL creates, read back from DuckDB so that the DDL stays the truth."""
    con = duckdb.connect()
    try:
        con.execute(ddl.format(t="probe"))
        rows = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'probe'"
            " ORDER BY column_index"
        ).fetchall()
    finally:
        con.close()
    return tuple(str(name).lower() for (name,) in rows)

"""DuckDBSink's checks before a load touches the file, its target's creation, and its clearing
of killed loads' rows."""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime, timezone

import duckdb

from ..._errors import SinkError
from .ledger import columns
from .names import Names
from .sql import _TARGET_DDL, _TARGET_DDL_ZSTD

# Loads running in this process: their ledger rows say 'running' and are not abandoned.
# (Other processes cannot hold the file: DuckDB lets one process open it for writing.)
ACTIVE_LOADS: set[str] = set()


def temp_directory(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    return str(row[0]) if row and row[0] else ""


def check_target(con: duckdb.DuckDBPyConnection, names: Names, ddl: str, where: str) -> None:
    """Refuse a target table that lacks a column the load fills, before anything is created.

    Columns are matched by name (their order does not matter); extra columns stay NULL.
    """
    found = columns(con, names, names.name)
    if not found:
        return  # no such table yet: the load creates it
    missing = [name for name in _expected(ddl) if name not in found]
    if missing:
        raise SinkError(
            f"{where}: table {names.table!r} exists with other columns than a results table "
            f"(missing: {', '.join(missing)}); load into another --table, or rename that table"
        )


def mark_abandoned(con: duckdb.DuckDBPyConnection, names: Names, active: Collection[str]) -> int:
    """Ledger rows still `running` whose load is not running: a killed process's. One process
    at a time can open the file for writing, so only this process's own loads (`active`) can
    be running. Marks them `abandoned`, noting when this was noticed; how many."""
    row = con.execute(
        f"SELECT count(*) FROM {names.ledger}"
        " WHERE status = 'running' AND NOT list_contains(?, load_id)",
        [list(active)],
    ).fetchone()
    if not row or not row[0]:
        return 0
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute(
        f"UPDATE {names.ledger} SET status = 'abandoned', finished_at = ?,"
        " error = 'the loading process ended without finishing (killed?); noticed at '"
        " || strftime(?, '%Y-%m-%d %H:%M:%S UTC')"
        " WHERE status = 'running' AND NOT list_contains(?, load_id)",
        [now, now, list(active)],
    )
    return int(row[0])


def create_target(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """The target table, if new, with zstd for its text; a file of an older storage version
    (or an older DuckDB) refuses zstd, and gets DuckDB's default compression."""
    try:
        con.execute(_TARGET_DDL_ZSTD.format(t=table))
    except duckdb.Error:
        con.execute(_TARGET_DDL.format(t=table))


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

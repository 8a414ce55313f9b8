"""How DuckDBSink opens a database file: the check that it is one, the memory budget and the
threads, and leaving the settings of a database instance it shares as they were.

DuckDB shares one database instance per file within a process: a user's notebook connection
to the same file sees every global setting a load makes. So the settings a load changes are
read first and put back before its connection closes.
"""

from __future__ import annotations

import contextlib
import os

import duckdb

from ..._errors import SinkError
from ..._memory import Budget, MiB, Share

# The settings a load changes; all global (shared with the user's connections) but the last
_SETTINGS = ("memory_limit", "threads", "preserve_insertion_order", "enable_progress_bar")


def check_database_file(path: str) -> None:
    """Refuse a path that exists and is not a DuckDB database, before DuckDB touches it:
    DuckDB would open a CSV or JSONL file as an empty database (the rows then go nowhere),
    and a SQLite file by downloading its SQLite extension."""
    if not os.path.exists(path):
        return
    if os.path.isdir(path):
        raise SinkError(f"{path} is a directory, not a DuckDB database file")
    try:
        with open(path, "rb") as file:
            head = file.read(16)
    except OSError as exc:
        raise SinkError(f"{path}: cannot read the database file: {exc.strerror}") from None
    if head[8:12] != b"DUCK":  # DuckDB's magic bytes
        raise SinkError(
            f"{path} is not a DuckDB database ({_looks_like(head)}): "
            "give --into a new file or an existing .duckdb database"
        )


def _looks_like(head: bytes) -> str:
    if head.startswith(b"SQLite format 3"):
        return "it is a SQLite database"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "it looks like JSON or JSONL"
    if len(head) < 12:
        return f"it holds only {len(head)} bytes" if head else "it is empty"
    return "its first bytes are not DuckDB's"


def configure(con: duckdb.DuckDBPyConnection, budget: Budget | Share) -> dict[str, str]:
    """Apply the load's settings; return the previous values, for `restore`."""
    saved = {name: _setting(con, name) for name in _SETTINGS}
    con.execute(f"SET memory_limit = '{budget.duckdb_memory // MiB}MiB'")
    con.execute(f"SET threads = {budget.threads}")
    # rows carry their seq: DuckDB need not keep their order, which lets inserts run in parallel
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    return saved


def restore(con: duckdb.DuckDBPyConnection, saved: dict[str, str]) -> None:
    """Put back what `configure` changed: RESET where that gives the value read before (the
    exact default, e.g. 80% of RAM), else SET the value as DuckDB showed it."""
    for name, value in saved.items():
        with contextlib.suppress(duckdb.Error):
            con.execute(f"RESET {name}")
            if _setting(con, name) != value:
                con.execute(f"SET {name} = '{value}'")


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    row = con.execute("SELECT current_setting(?)", [name]).fetchone()
    return str(row[0]) if row else ""

"""A third-party sink, as its author would write it: SQLite, `--into sqlite:PATH`.

One module (and an entry point naming it in `resultloader.sinks`): tests/sinks/test_plugin.py
installs it into a site directory of its own, and runs the sink contract against it.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from resultloader import CommitResult, LoadInfo, LoadReport, RowBatch
from resultloader.sinks import (
    LEDGER,
    LEDGER_COLUMNS,
    REJECTS_SUFFIX,
    CommittedLoad,
    SinkCapabilities,
    ledger_schema,
    running_row,
    split_table,
)
from resultloader.sinks.registry import SinkKind, register

_TABLE = """id TEXT PRIMARY KEY, output TEXT, metadata TEXT, url TEXT, extra TEXT,
    _source TEXT, _loaded_at TEXT"""
_REJECTS = """_source TEXT, line INTEGER, byte_offset INTEGER, reason TEXT, raw TEXT,
    _loaded_at TEXT, load_id TEXT"""
_TYPES = {"text": "TEXT", "integer": "INTEGER", "timestamp": "TEXT"}  # times: ISO 8601 text
_LEDGER = ", ".join(f"{n} {_TYPES[k]}" for n, k in LEDGER_COLUMNS) + ", pid INTEGER"
_FIELDS = ("output", "metadata", "url", "extra")
_STAGE = """CREATE TEMP TABLE stage (
    seq INTEGER, id TEXT, output TEXT, metadata TEXT, url TEXT, extra TEXT)"""
_STAGE_REJECTS = """CREATE TEMP TABLE stage_rejects (
    line INTEGER, byte_offset INTEGER, reason TEXT, raw TEXT)"""


class SqliteSink:
    """Upserts rows by `id` into a SQLite table, one transaction a load."""

    capabilities = SinkCapabilities(keeps_rejects=True, reads_ledger=True)

    def __init__(self, path: str, table: str = "results") -> None:
        schema, self.table = split_table(table)
        if schema is not None or table == LEDGER:
            raise ValueError(f"invalid table name {table!r} for SQLite")
        self.path, self.rejects_table = path, table + REJECTS_SUFFIX
        self._con: sqlite3.Connection | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""

    @classmethod
    def from_target(cls, location: str, table: str) -> SqliteSink:
        return cls(location, table)

    # -- the Sink protocol ---------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id = info, uuid.uuid4().hex
        self._con = con = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({_TABLE})")
        con.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} ({_LEDGER})")
        if info.options.on_error == "quarantine":
            con.execute(f"CREATE TABLE IF NOT EXISTS {self.rejects_table} ({_REJECTS})")
        self._abandon_killed(con)
        row = {**running_row(self._load_id, self.table, info, _now()), "pid": os.getpid()}
        row["started_at"] = row["started_at"].isoformat()
        marks = ", ".join("?" * len(row))
        con.execute(f"INSERT INTO {LEDGER} ({', '.join(row)}) VALUES ({marks})", list(row.values()))
        con.execute(_STAGE)
        con.execute(_STAGE_REJECTS)

    def write(self, batch: RowBatch) -> None:
        con = self._require()
        b = batch
        rows = zip(b.seq, b.ids, b.outputs, b.metadata, b.urls, b.extras, strict=True)
        con.executemany("INSERT INTO temp.stage VALUES (?, ?, ?, ?, ?, ?)", rows)
        rejects = [(r.line, r.offset, r.reason, r.raw) for r in batch.rejects]
        con.executemany("INSERT INTO temp.stage_rejects VALUES (?, ?, ?, ?)", rejects)

    def commit(self, report: LoadReport) -> CommitResult:
        con = self._require()
        try:
            con.execute("BEGIN IMMEDIATE")
            result = self._merge(con, report)
            con.execute("COMMIT")
        except BaseException as exc:
            self._fail(con, str(exc) or type(exc).__name__)
            raise
        finally:
            self._finish()
        return result

    def abort(self, error: str | None = None) -> None:
        if self._con is not None:
            self._fail(self._con, error or "aborted")
        self._finish()

    # -- the LedgerSink protocol -----------------------------------------------------------------

    def committed_loads(self) -> list[CommittedLoad]:
        sql = f"SELECT source, provider, version FROM {LEDGER} WHERE target = ? AND status = ?"
        rows = self._read(LEDGER, sql, [self.table, "committed"]) or []
        return [CommittedLoad(*row) for row in rows]

    def ledger(self) -> pa.Table | None:
        schema = ledger_schema()
        rows = self._read(LEDGER, f"SELECT {', '.join(schema.names)} FROM {LEDGER}", [])
        if rows is None:
            return None
        found = [dict(zip(schema.names, row, strict=True)) for row in rows]
        for row in found:
            for name in ("started_at", "finished_at"):
                row[name] = row[name] and datetime.fromisoformat(row[name])
        return pa.Table.from_pylist(found, schema)

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        table = str(load["target"]) + REJECTS_SUFFIX
        if not table.replace("_", "").isalnum():
            return []  # not a table name a load could have had
        sql = f"SELECT line, byte_offset, reason, raw FROM {table} WHERE load_id = ? ORDER BY line"
        rows = self._read(table, sql, [load["load_id"]]) or []
        return [dict(zip(("line", "byte_offset", "reason", "raw"), r, strict=True)) for r in rows]

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        info = self._read(self.table, f"SELECT name FROM pragma_table_info('{self.table}')", [])
        if info is None:
            return None
        present = [name for name in names if name in {n for (n,) in info}]
        if not present:
            return pa.table({})
        rows = self._read(self.table, f"SELECT {', '.join(present)} FROM {self.table}", []) or []
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(present)})

    # -- internals -------------------------------------------------------------------------------

    def _merge(self, con: sqlite3.Connection, report: LoadReport) -> CommitResult:
        source, now = self._info.source if self._info else "", _now().isoformat()
        staged = con.execute("SELECT count(*), count(DISTINCT id) FROM temp.stage").fetchone()
        con.execute(
            "CREATE TEMP TABLE winners AS SELECT s.* FROM temp.stage s JOIN"
            " (SELECT id, max(seq) AS seq FROM temp.stage GROUP BY id) w USING (id, seq)"
        )
        t = self.table
        same = " AND ".join(f"{t}.{c} IS excluded.{c}" for c in _FIELDS)
        update = ", ".join(f"{c} = excluded.{c}" for c in (*_FIELDS, "_source", "_loaded_at"))
        before = con.total_changes
        con.execute(  # WHERE true: the upsert's clause would be read as the SELECT's join
            f"INSERT INTO {t} SELECT id, output, coalesce(metadata, '{{}}'), url, extra, ?, ?"
            f" FROM temp.winners WHERE true ON CONFLICT (id) DO UPDATE SET {update}"
            f" WHERE NOT ({same})",
            [source, now],
        )
        upserted = con.total_changes - before
        if self._info and self._info.options.on_error == "quarantine":
            r = self.rejects_table
            con.execute(
                f"INSERT INTO {r} SELECT ?, line, byte_offset, reason, raw, ?, ?"
                f" FROM temp.stage_rejects s WHERE NOT EXISTS (SELECT 1 FROM {r} r"
                " WHERE r._source = ? AND r.line = s.line AND r.byte_offset = s.byte_offset"
                " AND r.reason = s.reason AND r.raw = s.raw)",
                [source, now, self._load_id, source],
            )
        total, distinct = staged or (0, 0)
        counts = (upserted, distinct - upserted, total - distinct)
        con.execute(
            f"UPDATE {LEDGER} SET status = 'committed', finished_at = ?, job_status = ?,"
            " rows_read = ?, rows_upserted = ?, rows_unchanged = ?, duplicates = ?, bad_rows = ?,"
            " bytes = ? WHERE load_id = ?",
            [now, report.status, report.rows_read, *counts, report.bad_rows, *self._tail(report)],
        )
        return CommitResult(upserted=counts[0], unchanged=counts[1], duplicates=counts[2])

    def _tail(self, report: LoadReport) -> tuple[int, str]:
        return report.bytes_read, self._load_id

    def _abandon_killed(self, con: sqlite3.Connection) -> None:
        running = con.execute(f"SELECT load_id, pid FROM {LEDGER} WHERE status = 'running'")
        for load_id, pid in running.fetchall():
            if not _alive(pid):
                con.execute(
                    f"UPDATE {LEDGER} SET status = 'abandoned', finished_at = ?, error = ?"
                    " WHERE load_id = ?",
                    [_now().isoformat(), "the loading process ended (killed?)", load_id],
                )

    def _fail(self, con: sqlite3.Connection, error: str | None) -> None:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.execute(
            f"UPDATE {LEDGER} SET status = 'failed', finished_at = ?, error = ? WHERE load_id = ?",
            [_now().isoformat(), (error or "aborted")[:500], self._load_id],
        )

    def _read(self, table: str, sql: str, args: list[Any]) -> list[tuple[Any, ...]] | None:
        """The rows of a query reading `table`; None if there is no such table (or file)."""
        if not os.path.exists(self.path):
            return None
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            known = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            if con.execute(known, [table]).fetchone() is None:
                return None
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def _require(self) -> sqlite3.Connection:
        if self._con is None:
            raise RuntimeError("SqliteSink: begin() was not called")
        return self._con

    def _finish(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


def _now() -> datetime:
    return datetime.now(timezone.utc)


register(SinkKind(("sqlite",), SqliteSink, "sqlite:PATH (a plug-in)"))

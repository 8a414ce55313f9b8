"""DuckDBSink: the embedded default.

A load stages its rows in TEMP tables (outside any transaction, so a failed statement costs only
its own chunk), then merges them into the target in one transaction: dedupe (last `seq` wins),
drop rows identical to what the table holds, delete the changed ids, insert, record the ledger.
The target has no PRIMARY KEY on purpose: the set-based merge keeps `id` unique, several times
faster than index maintenance, and the index's memory would not be bounded by `memory_limit`.

JSONL chunks are read by DuckDB's own C++ reader (`read_ndjson_objects`), which keeps each line's
text exactly. Rows it would not store exactly (long numbers, NaN, duplicate keys) or that may be
bad are flagged, and parsed again in Python; a chunk DuckDB cannot read at all is declined.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .._errors import SinkError
from .._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch, check_name
from ..parse import JsonlChunk, parse_chunk

LEDGER = "_resultloader_loads"
_STAGE, _STAGE_REJECTS = "_rl_stage", "_rl_stage_rejects"
# Numbers a double may not hold (16+ digits), and NaN/Infinity, which DuckDB accepts but JSON not.
_NEEDS_PYTHON = r"[0-9.]{16}|NaN|Infinity"

_TARGET_DDL = """CREATE TABLE IF NOT EXISTS {t} (
    id VARCHAR, output JSON, metadata JSON, url VARCHAR, extra JSON,
    _source VARCHAR, _loaded_at TIMESTAMP)"""
_REJECTS_DDL = """CREATE TABLE IF NOT EXISTS {t}_rejects (
    _source VARCHAR, line BIGINT, byte_offset BIGINT, reason VARCHAR, raw VARCHAR,
    _loaded_at TIMESTAMP)"""
_LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    load_id VARCHAR, target VARCHAR, source VARCHAR, provider VARCHAR, job_id VARCHAR,
    job_status VARCHAR, status VARCHAR, rows_read BIGINT, rows_upserted BIGINT,
    rows_unchanged BIGINT, duplicates BIGINT, bad_rows BIGINT, bytes BIGINT,
    started_at TIMESTAMP, finished_at TIMESTAMP, error VARCHAR)"""
_STAGE_DDL = f"""CREATE OR REPLACE TEMP TABLE {_STAGE} (
    seq BIGINT, id VARCHAR, output VARCHAR, metadata VARCHAR, url VARCHAR, extra VARCHAR,
    raw VARCHAR)"""
_STAGE_REJECTS_DDL = f"""CREATE OR REPLACE TEMP TABLE {_STAGE_REJECTS} (
    line BIGINT, byte_offset BIGINT, reason VARCHAR, raw VARCHAR)"""

_NATIVE_INSERT = """INSERT INTO {stage}
SELECT $base + rn, v[1]->>'$',
    CASE WHEN v[2] <> 'null' THEN v[2] END,
    CASE WHEN v[3] <> 'null' THEN v[3] END,
    v[4]->>'$',
    CASE WHEN len(k) > (v[1] IS NOT NULL)::INT + (v[2] IS NOT NULL)::INT
                     + (v[3] IS NOT NULL)::INT + (v[4] IS NOT NULL)::INT
         THEN json_merge_patch(raw, $patch) END,
    CASE WHEN coalesce(
        json_type(raw) <> 'OBJECT'
        OR json_type(v[1]) NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
        OR coalesce(json_type(v[4]) NOT IN ('VARCHAR', 'NULL'), false)
        OR len(k) <> len(list_distinct(k))
        OR regexp_matches(raw, $needs_python), true) THEN raw END
FROM (
    SELECT rn, raw, json_keys(raw) AS k,
           json_extract(raw, ['$.{key}', '$.output', '$.metadata', '$.url']) AS v
    FROM (SELECT row_number() OVER () AS rn, json AS raw FROM read_ndjson_objects($path))
)"""


class DuckDBSink:
    """Upserts rows by `id` into a DuckDB table (created on first use), one transaction a load.

    `database` is a file path (opened and closed per load) or an open connection (used as is).
    """

    stores_rejects = True

    def __init__(
        self,
        database: str | os.PathLike[str] | duckdb.DuckDBPyConnection = "results.duckdb",
        table: str = "results",
        *,
        memory_limit: str | None = "256MB",
    ) -> None:
        self.table = _check_table(table)
        self.database = database
        self.memory_limit = memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""
        self._tmpdir: Path | None = None
        self._chunks = 0

    def __repr__(self) -> str:
        where = "<connection>" if self._owns_no_connection else os.fspath(self.database)  # type: ignore[arg-type]
        return f"DuckDBSink({where!r}, table={self.table!r})"

    @property
    def _owns_no_connection(self) -> bool:
        return isinstance(self.database, duckdb.DuckDBPyConnection)

    # -- the Sink protocol -------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id, self._chunks = info, uuid.uuid4().hex, 0
        con = self._connect()
        key = info.options.key
        self._native_sql = _NATIVE_INSERT.format(stage=_STAGE, key=key)
        self._patch = (
            "{" + ",".join(f'"{k}":null' for k in (key, "output", "metadata", "url")) + "}"
        )
        for ddl in (_TARGET_DDL, _REJECTS_DDL):
            con.execute(ddl.format(t=self.table))
        con.execute(_LEDGER_DDL)
        con.execute(_STAGE_DDL)
        con.execute(_STAGE_REJECTS_DDL)
        con.execute(
            f"INSERT INTO {LEDGER} (load_id, target, source, provider, job_id, status, started_at)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?)",
            [self._load_id, self.table, info.source, info.provider, info.job_id, _now()],
        )
        self._tmpdir = Path(tempfile.mkdtemp(prefix="resultloader-"))

    def write(self, batch: RowBatch) -> None:
        con = self._require()
        if len(batch):
            table = pa.table(
                {
                    "seq": pa.array(batch.seq, pa.int64()),
                    "id": pa.array(batch.ids, pa.string()),
                    "output": pa.array(batch.outputs, pa.string()),
                    "metadata": pa.array(batch.metadata, pa.string()),
                    "url": pa.array(batch.urls, pa.string()),
                    "extra": pa.array(batch.extras, pa.string()),
                }
            )
            con.register("_rl_batch", table)
            try:
                con.execute(f"INSERT INTO {_STAGE} SELECT *, NULL FROM _rl_batch")
            finally:
                con.unregister("_rl_batch")
        if batch.rejects:
            rejects = [(r.line, r.offset, r.reason, r.raw) for r in batch.rejects]
            con.executemany(f"INSERT INTO {_STAGE_REJECTS} VALUES (?, ?, ?, ?)", rejects)

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None:
        """Stage a JSONL chunk with DuckDB's reader; None if Python must parse it instead."""
        con, base = self._require(), chunk.first_line - 1
        assert self._tmpdir is not None
        self._chunks += 1
        path = self._tmpdir / f"chunk-{self._chunks}.jsonl"
        path.write_bytes(chunk.data)
        try:
            params = {
                "base": base,
                "path": str(path),
                "patch": self._patch,
                "needs_python": _NEEDS_PYTHON,
            }
            con.execute(self._native_sql, params)
        except duckdb.Error:
            return None  # malformed somewhere in the chunk: Python finds the line and the reason
        finally:
            path.unlink()
        end = base + chunk.data.count(b"\n") + 1
        rows, nulls, no_meta, flagged = con.execute(
            f"""SELECT count(*), count(*) FILTER (output IS NULL),
                       count(*) FILTER (metadata IS NULL), list((seq, raw)) FILTER (raw IS NOT NULL)
                FROM {_STAGE} WHERE seq > ? AND seq <= ?""",
            [base, end],
        ).fetchone() or (0, 0, 0, None)
        stats = BatchStats(rows, nulls, no_meta)
        if flagged:
            return self._reparse_flagged(chunk, base, end, flagged, stats)
        return stats

    def commit(self, report: LoadReport | None = None) -> CommitResult:
        con = self._require()
        try:
            con.execute("BEGIN TRANSACTION")
            result = self._merge(con, report)
            con.execute("COMMIT")
        except BaseException as exc:  # Ctrl-C surfaces as RuntimeError("Query interrupted")
            self._rollback(con)
            self._mark_failed(con, str(exc) or type(exc).__name__)
            if isinstance(exc, duckdb.Error):
                raise SinkError(f"{self.table}: the load could not be committed: {exc}") from None
            raise
        finally:
            self._finish()
        return result

    def abort(self, error: str | None = None) -> None:
        con = self._con
        if con is not None:
            self._rollback(con)
            self._mark_failed(con, error)
        self._finish()

    def _mark_failed(self, con: duckdb.DuckDBPyConnection, error: str | None) -> None:
        # if this fails the ledger row stays 'running'; the target is untouched either way
        with contextlib.suppress(duckdb.Error, RuntimeError):
            con.execute(
                f"UPDATE {LEDGER} SET status = 'failed', finished_at = ?, error = ?"
                " WHERE load_id = ?",
                [_now(), (error or "aborted")[:500], self._load_id],
            )

    # -- internals -----------------------------------------------------------------------------

    def _reparse_flagged(
        self, chunk: JsonlChunk, base: int, end: int, flagged: list[Any], stats: BatchStats
    ) -> BatchStats | None:
        """Parse flagged rows in Python (exact numbers); if any is bad, decline the chunk so
        the Python parser reports it with its true line number."""
        con = self._require()
        fixed = RowBatch()
        for item in flagged:
            seq, raw = (item["seq"], item["raw"]) if isinstance(item, dict) else item
            one = parse_chunk(JsonlChunk(chunk.source, raw.encode(), seq, 0), chunk_options(self))
            if one.rejects:
                con.execute(f"DELETE FROM {_STAGE} WHERE seq > ? AND seq <= ?", [base, end])
                return None
            for name in ("ids", "outputs", "metadata", "urls", "extras", "seq"):
                getattr(fixed, name).extend(getattr(one, name))
        con.execute(
            f"DELETE FROM {_STAGE} WHERE seq > ? AND seq <= ? AND raw IS NOT NULL", [base, end]
        )
        self.write(fixed)
        gone = BatchStats(len(flagged), 0, 0)
        stats.rows -= gone.rows
        stats.null_outputs = con.execute(
            f"SELECT count(*) FILTER (output IS NULL) FROM {_STAGE} WHERE seq > ? AND seq <= ?",
            [base, end],
        ).fetchone()[0]  # type: ignore[index]
        stats.missing_metadata = con.execute(
            f"SELECT count(*) FILTER (metadata IS NULL) FROM {_STAGE} WHERE seq > ? AND seq <= ?",
            [base, end],
        ).fetchone()[0]  # type: ignore[index]
        stats.rows += len(fixed)
        return stats

    def _merge(self, con: duckdb.DuckDBPyConnection, report: LoadReport | None) -> CommitResult:
        t, now = self.table, _now()
        source = self._info.source if self._info else ""
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _rl_new AS
                SELECT id, output, coalesce(metadata, '{{}}') AS metadata, url, extra
                FROM {_STAGE} QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1"""
        )
        staged = _scalar(con, f"SELECT count(*) FROM {_STAGE}")
        distinct = _scalar(con, "SELECT count(*) FROM _rl_new")
        existing = _scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1)")
        unchanged = 0
        if existing:
            con.execute(
                f"""DELETE FROM _rl_new n USING {t} o WHERE o.id = n.id
                    AND o.output IS NOT DISTINCT FROM n.output AND o.metadata = n.metadata
                    AND o.url IS NOT DISTINCT FROM n.url AND o.extra IS NOT DISTINCT FROM n.extra"""
            )
            upserted = _scalar(con, "SELECT count(*) FROM _rl_new")
            unchanged = distinct - upserted
            con.execute(f"DELETE FROM {t} WHERE id IN (SELECT id FROM _rl_new)")
        con.execute(f"INSERT INTO {t} SELECT *, ?, ? FROM _rl_new", [source, now])
        upserted = distinct - unchanged
        con.execute(
            f"INSERT INTO {t}_rejects SELECT ?, line, byte_offset, reason, raw, ?"
            f" FROM {_STAGE_REJECTS}",
            [source, now],
        )
        r = report or LoadReport(source)
        con.execute(
            f"""UPDATE {LEDGER} SET status = 'committed', finished_at = ?, job_status = ?,
                rows_read = ?, rows_upserted = ?, rows_unchanged = ?, duplicates = ?,
                bad_rows = ?, bytes = ? WHERE load_id = ?""",
            [
                now,
                r.status,
                r.rows_read,
                upserted,
                unchanged,
                staged - distinct,
                r.bad_rows,
                r.bytes_read,
                self._load_id,
            ],
        )
        return CommitResult(upserted=upserted, unchanged=unchanged, duplicates=staged - distinct)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if isinstance(self.database, duckdb.DuckDBPyConnection):
            self._con = self.database
            return self._con
        path = os.fspath(self.database)
        try:
            con = duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise SinkError(
                    f"{path} is in use by another process; wait for it to finish, "
                    "or load into another database file"
                ) from None
            raise SinkError(f"{path}: cannot open the database: {exc}") from None
        if self.memory_limit:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        self._con = con
        return con

    def _require(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise SinkError("DuckDBSink: begin() was not called")
        return self._con

    @staticmethod
    def _rollback(con: duckdb.DuckDBPyConnection) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction may be open
            con.execute("ROLLBACK")

    def _finish(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        con, self._con = self._con, None
        if con is None:
            return
        for name in (_STAGE, _STAGE_REJECTS, "_rl_new"):
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP TABLE IF EXISTS {name}")
        if not self._owns_no_connection:
            con.close()


def chunk_options(sink: DuckDBSink) -> Any:
    assert sink._info is not None
    return sink._info.options


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _check_table(name: str) -> str:
    """A plain identifier that DuckDB will take unquoted as a table name, and not the ledger."""
    check_name("table", name)
    if name.lower() in _keywords() or name.lower() == LEDGER:
        raise ValueError(f"invalid table name {name!r}: DuckDB reserves it; choose another name")
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


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)

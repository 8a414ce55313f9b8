"""PostgresSink: upserts into a PostgreSQL table over psycopg 3 (extra `resultloader[postgres]`).

A load holds a session advisory lock on its table (a second load into it waits, rather than
deadlocking on the same ids) and records its ledger row; its table's rows still `running` then
are killed loads' (they held the lock), marked `abandoned`. Its rows are staged and deduped (the
last `seq` of an id wins) in an in-process DuckDB (sinks/_stage.py: JSONL read by DuckDB as for a
DuckDB load). At commit, in one transaction, the winners are copied (COPY ... CSV, written by
Arrow) into a temporary table and one `INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE` changed
moves them into the table. No statement runs per row; the server holds no transaction open
while the source is read.

JSON travels as text and is cast to JSONB by the server, which keeps numbers as NUMERIC: big
integers and long decimals keep their value (no driver float in between). Rows are compared as
the JSONB's text, so `1.0` -> `1.00` is a change, as it is for DuckDB.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from .._errors import SinkError
from .._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from .._names import check_name
from .._redact import display_name
from ..parse import JsonlChunk
from . import CommittedLoad, SinkCapabilities, running_row
from ._stage import DuckDBStage

LEDGER = "_resultloader_loads"
Connection = psycopg.Connection[tuple[Any, ...]]
_COLUMNS = ["id", "output", "metadata", "url", "extra"]
_LOCK_CLASS = 0x52_4C  # "RL": the advisory lock space of resultloader's loads
_SUFFIX = "_rejects"

_TARGET_DDL = """CREATE TABLE IF NOT EXISTS {t} (
    id TEXT PRIMARY KEY, output JSONB, metadata JSONB NOT NULL, url TEXT, extra JSONB,
    _source TEXT, _loaded_at TIMESTAMPTZ)"""
_REJECTS_DDL = """CREATE TABLE IF NOT EXISTS {r} (
    _source TEXT, line BIGINT, byte_offset BIGINT, reason TEXT, raw TEXT,
    _loaded_at TIMESTAMPTZ, load_id TEXT)"""
_LEDGER_DDL = """CREATE TABLE IF NOT EXISTS {ledger} (
    load_id TEXT PRIMARY KEY, target TEXT, source TEXT, provider TEXT, job_id TEXT,
    job_status TEXT, status TEXT, rows_read BIGINT, rows_upserted BIGINT, rows_unchanged BIGINT,
    duplicates BIGINT, bad_rows BIGINT, bytes BIGINT, started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, error TEXT, version TEXT);
ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS version TEXT"""
# pg_temp: the staging tables are this session's own, out of every user's schema
_STAGE_DDL = """CREATE TEMP TABLE _rl_stage (
    id TEXT, output TEXT, metadata TEXT, url TEXT, extra TEXT, _source TEXT) ON COMMIT DROP;
CREATE TEMP TABLE _rl_stage_rejects (
    line BIGINT, byte_offset BIGINT, reason TEXT, raw TEXT, source TEXT) ON COMMIT DROP"""
_MERGE = """INSERT INTO {t} AS t (id, output, metadata, url, extra, _source, _loaded_at)
SELECT id, output::jsonb, metadata::jsonb, url, extra::jsonb, coalesce(_source, %(source)s),
    %(now)s
FROM pg_temp._rl_stage
ON CONFLICT (id) DO UPDATE SET output = EXCLUDED.output, metadata = EXCLUDED.metadata,
    url = EXCLUDED.url, extra = EXCLUDED.extra, _source = EXCLUDED._source,
    _loaded_at = EXCLUDED._loaded_at
WHERE (t.output::text, t.metadata::text, t.url, t.extra::text) IS DISTINCT FROM
    (EXCLUDED.output::text, EXCLUDED.metadata::text, EXCLUDED.url, EXCLUDED.extra::text)"""
# Rejects a re-run would add again (same source, line, offset, reason and raw text) are not:
# re-running a load changes nothing, as in DuckDB; each keeps the load_id that first kept it.
_REJECTS_INSERT = """INSERT INTO {rejects}
    (_source, line, byte_offset, reason, raw, _loaded_at, load_id)
SELECT coalesce(s.source, %(source)s), s.line, s.byte_offset, s.reason, s.raw, %(now)s, %(id)s
FROM pg_temp._rl_stage_rejects s WHERE NOT EXISTS (
    SELECT 1 FROM {rejects} r WHERE r._source = coalesce(s.source, %(source)s) AND r.line = s.line
        AND r.byte_offset = s.byte_offset AND r.reason = s.reason AND r.raw = s.raw)"""
# Rows of this table's loads still `running` are a killed process's: a load holds the table's
# advisory lock from before it writes its row until its session ends, and this load holds it now.
_ABANDON = """UPDATE {ledger} SET status = 'abandoned', finished_at = %(now)s,
    error = 'the loading process ended without finishing (killed?); noticed at '
        || to_char(%(now)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
WHERE status = 'running' AND target = %(table)s"""
# Arrow's CSV: every value quoted, NULL as an unquoted empty field, which COPY reads as NULL
_CSV = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")


class PostgresSink:
    """Upserts rows by `id` into a PostgreSQL table (created on first use), one transaction a
    load. `url` is `postgresql://USER[:PASSWORD]@HOST:PORT/DB`; the password may instead come
    from `PGPASSWORD` (or any other way libpq finds one). It is never shown."""

    capabilities = SinkCapabilities(keeps_rejects=True, reads_jsonl=True, reads_ledger=True)
    prepare_jsonl = staticmethod(DuckDBStage.prepare_jsonl)

    def __init__(self, url: str, table: str = "results") -> None:
        self.table = check_table(table)
        self._url = url
        self._stage = DuckDBStage()
        self._conn: Connection | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""

    def __repr__(self) -> str:
        return f"PostgresSink({display_name(self._url)!r}, table={self.table!r})"

    def committed_loads(self) -> list[CommittedLoad]:
        with self._reading("cannot read the ledger") as conn:
            if not _exists(conn, LEDGER):
                return []
            # the version through to_jsonb: a ledger from before it has no such column
            cur = conn.execute(
                self._sql(
                    "SELECT source, provider, to_jsonb(l) ->> 'version' FROM {ledger} l"
                    " WHERE target = %s AND status = 'committed'"
                ),
                [self.table],
            )
            return [CommittedLoad(*row) for row in cur]

    # -- the Sink protocol -------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id = info, uuid.uuid4().hex
        self._conn = conn = self._connect()
        with self._errors("could not start the load"):
            # the lock is the session's: it outlives the commit below and ends with the
            # connection, even when the process is killed
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_LOCK_CLASS, self.table])
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", [_LOCK_CLASS])  # DDL, one at once
            for ddl in (_TARGET_DDL, _REJECTS_DDL, _LEDGER_DDL):
                conn.execute(self._sql(ddl))
            conn.execute(self._sql(_ABANDON), {"table": self.table, "now": _now()})
            row = running_row(self._load_id, self.table, info, _now())
            columns, values = ", ".join(row), ", ".join(["%s"] * len(row))
            conn.execute(
                self._sql(f"INSERT INTO {{ledger}} ({columns}) VALUES ({values})"),
                list(row.values()),
            )
            conn.commit()  # the ledger's `running` row stands even if the load dies
        self._stage.begin(info)

    def write(self, batch: RowBatch) -> None:
        self._require()
        self._stage.write(batch)

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None:
        self._require()
        return self._stage.write_jsonl(chunk)

    def commit(self, report: LoadReport) -> CommitResult:
        conn = self._require()
        try:
            with self._errors("the load could not be committed"):
                result = self._merge(conn, report)
                conn.commit()
        except BaseException as exc:
            self._fail(conn, str(exc) or type(exc).__name__)
            raise
        finally:
            self._finish()
        return result

    def abort(self, error: str | None = None) -> None:
        if self._conn is not None:
            self._fail(self._conn, error)
        self._finish()

    # -- internals -----------------------------------------------------------------------------

    def _merge(self, conn: Connection, report: LoadReport) -> CommitResult:
        """The load's transaction: the deduped rows COPY'd into a temp table, one upsert."""
        source = self._info.source if self._info else ""
        now = _now()
        staged, duplicates, null_outputs, missing_metadata = self._stage.counts()
        conn.execute(_STAGE_DDL)
        # each row's own source only where rows came from several (an atomic load of many)
        columns = [*_COLUMNS, "_source"] if self._info and self._info.sources else _COLUMNS
        into = f"pg_temp._rl_stage ({', '.join(columns)})"
        with conn.cursor() as cur:
            with cur.copy(f"COPY {into} FROM STDIN (FORMAT csv)") as copy:
                # batches of 16k rows (~4 MB of CSV): the DuckDB stage is at its peak meanwhile
                for batch in self._stage.winners(source, now, batch_rows=16384):
                    buffer = io.BytesIO()
                    pa_csv.write_csv(batch.select(columns), buffer, _CSV)
                    copy.write(buffer.getbuffer())
            with cur.copy("COPY pg_temp._rl_stage_rejects FROM STDIN") as copy:
                for r in self._stage.rejects().to_pylist():  # few: bad rows only
                    raw = _text(r["raw"])
                    copy.write_row((r["line"], r["byte_offset"], r["reason"], raw, r["source"]))
        upserted = conn.execute(self._sql(_MERGE), {"source": source, "now": now}).rowcount
        unchanged = staged - duplicates - upserted
        conn.execute(
            self._sql(_REJECTS_INSERT), {"source": source, "now": now, "id": self._load_id}
        )
        conn.execute(
            self._sql(
                "UPDATE {ledger} SET status = 'committed', finished_at = %s, job_status = %s,"
                " rows_read = %s, rows_upserted = %s, rows_unchanged = %s, duplicates = %s,"
                " bad_rows = %s, bytes = %s WHERE load_id = %s"
            ),
            [
                now,
                report.status,
                report.rows_read,
                upserted,
                unchanged,
                duplicates,
                report.bad_rows,
                report.bytes_read,
                self._load_id,
            ],
        )
        return CommitResult(
            upserted=upserted,
            unchanged=unchanged,
            duplicates=duplicates,
            null_outputs=null_outputs,
            missing_metadata=missing_metadata,
        )

    def _fail(self, conn: Connection, error: str | None) -> None:
        """Roll the load back and mark its ledger row; if that fails too, the row stays
        `running` (the table is untouched either way)."""
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
            conn.execute(
                self._sql(
                    "UPDATE {ledger} SET status = 'failed', finished_at = %s, error = %s"
                    " WHERE load_id = %s"
                ),
                [_now(), self._scrub(error or "aborted")[:500], self._load_id],
            )
            conn.commit()

    def _connect(self) -> Connection:
        try:
            return psycopg.connect(self._url, autocommit=False)
        except psycopg.Error as exc:
            raise SinkError(
                f"{display_name(self._url)}: cannot connect: {self._scrub(str(exc))}"
            ) from None

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[Connection]:
        """A connection of its own for reading the ledger or rejects, closed after."""
        conn = self._connect()
        try:
            with self._errors(what):
                yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """A database error as a SinkError naming the table, with no password in it."""
        try:
            yield
        except psycopg.Error as exc:
            raise SinkError(f"{self.table}: {what}: {self._scrub(str(exc))}") from None

    def _scrub(self, text: str) -> str:
        password = _password(self._url)
        text = " ".join(text.split())
        return text.replace(password, "***") if password else text

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(  # type: ignore[arg-type,unused-ignore]
            t=sql.Identifier(self.table),
            rejects=sql.Identifier(self.table + _SUFFIX),
            r=sql.Identifier(self.table + _SUFFIX),
            ledger=sql.Identifier(LEDGER),
        )

    def _require(self) -> Connection:
        if self._conn is None:
            raise SinkError("PostgresSink: begin() was not called")
        return self._conn

    def _finish(self) -> None:
        self._stage.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ends the session: temp tables and the advisory lock go with it


def ledger(url: str) -> pa.Table | None:
    """The ledger's rows (for `resultloader history`), or None if there is no ledger."""
    sink = PostgresSink(url)
    with sink._reading("cannot read the ledger") as conn:
        if not _exists(conn, LEDGER):
            return None
        return pa.Table.from_pylist(_dicts(conn.execute(sink._sql("SELECT * FROM {ledger}"))))


def rejects(url: str, load: dict[str, Any]) -> list[dict[str, Any]]:
    """The rejects a load kept, by line (for `resultloader history`)."""
    table = str(load["target"] or "")
    if not table or len(table) > 63 - len(_SUFFIX):
        return []
    sink = PostgresSink(url, check_table(table))
    with sink._reading("cannot read the rejects") as conn:
        if not _exists(conn, table + _SUFFIX):
            return []
        cur = conn.execute(
            sink._sql(
                "SELECT line, byte_offset, reason, raw FROM {rejects}"
                " WHERE load_id = %s ORDER BY line"
            ),
            [load["load_id"]],
        )
        return _dicts(cur)


def check_table(name: str) -> str:
    """A plain identifier that leaves room for `_rejects` in PostgreSQL's 63 bytes (longer
    names would be cut short silently), and not the ledger's."""
    check_name("table", name)
    if len(name) > 63 - len(_SUFFIX) or name.lower() == LEDGER:
        raise ValueError(
            f"invalid table name {name!r}: at most {63 - len(_SUFFIX)} characters, and not {LEDGER}"
        )
    return name


def _password(url: str) -> str | None:
    found = urlsplit(url).password
    return unquote(found) if found else os.environ.get("PGPASSWORD") or None


def _text(raw: str) -> str:
    """PostgreSQL text holds no NUL character: a rejected line keeps the rest."""
    return raw.replace("\x00", "\ufffd")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _exists(conn: Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
    return bool(row and row[0])


def _dicts(cur: psycopg.Cursor[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]

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
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from ..._columns import Column, decimal_digits
from ..._errors import SinkError
from ..._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from ..._redact import display_name
from ...parse import JsonlChunk
from .. import (
    LEDGER,
    LEDGER_COLUMNS,
    REJECTS_SUFFIX,
    CommittedLoad,
    SinkCapabilities,
    ledger_schema,
    running_row,
    split_table,
)
from .._stage import DuckDBStage

Connection = psycopg.Connection[tuple[Any, ...]]
_COLUMNS = ["id", "output", "metadata", "url", "extra"]
_LOCK_CLASS = 0x52_4C  # "RL": the advisory lock space of resultloader's loads
_SUFFIX = REJECTS_SUFFIX
_TYPES = {"text": "TEXT", "integer": "BIGINT", "timestamp": "TIMESTAMPTZ"}  # LEDGER_COLUMNS'

_TARGET_DDL = """CREATE TABLE IF NOT EXISTS {t} (
    id TEXT PRIMARY KEY, output JSONB, metadata JSONB NOT NULL, url TEXT, extra JSONB,
    _source TEXT, _loaded_at TIMESTAMPTZ)"""
_REJECTS_DDL = """CREATE TABLE IF NOT EXISTS {r} (
    _source TEXT, line BIGINT, byte_offset BIGINT, reason TEXT, raw TEXT,
    _loaded_at TIMESTAMPTZ, load_id TEXT)"""
# the ledger, made if new; the columns a ledger from before lacks are added
_LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS {ledger} ("
    + ", ".join(f"{name} {_TYPES[kind]}" for name, kind in LEDGER_COLUMNS)
    + ", PRIMARY KEY (load_id));\nALTER TABLE {ledger} "
    + ", ".join(f"ADD COLUMN IF NOT EXISTS {n} {_TYPES[k]}" for n, k in LEDGER_COLUMNS)
)
# pg_temp: the staging tables are this session's own, out of every user's schema
_STAGE_DDL = """CREATE TEMP TABLE _rl_stage (
    id TEXT, output TEXT, metadata TEXT, url TEXT, extra TEXT, _source TEXT{typed}) ON COMMIT DROP;
CREATE TEMP TABLE _rl_stage_rejects (
    line BIGINT, byte_offset BIGINT, reason TEXT, raw TEXT, source TEXT) ON COMMIT DROP"""
# `{{names}}`, `{{casts}}`, `{{sets}}`, `{{old}}`, `{{new}}`: the typed columns, after the row's
_MERGE = """INSERT INTO {{t}} AS t (id, output, metadata, url, extra, _source, _loaded_at{names})
SELECT id, output::jsonb, metadata::jsonb, url, extra::jsonb, coalesce(_source, %(source)s),
    %(now)s{casts}
FROM pg_temp._rl_stage
ON CONFLICT (id) DO UPDATE SET output = EXCLUDED.output, metadata = EXCLUDED.metadata,
    url = EXCLUDED.url, extra = EXCLUDED.extra, _source = EXCLUDED._source,
    _loaded_at = EXCLUDED._loaded_at{sets}
WHERE (t.output::text, t.metadata::text, t.url, t.extra::text{old}) IS DISTINCT FROM
    (EXCLUDED.output::text, EXCLUDED.metadata::text, EXCLUDED.url, EXCLUDED.extra::text{new})"""
# A typed column's type here, and as format_type() names it (to refuse a changed one)
_PG_TYPES = {
    "text": ("text", "text"),
    "bigint": ("bigint", "bigint"),
    "double": ("double precision", "double precision"),
    "boolean": ("boolean", "boolean"),
    "timestamp": ("timestamp", "timestamp without time zone"),
    "json": ("jsonb", "jsonb"),
}
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
        self._schema, self._name = _names(table)
        self.table = table
        self._url = url
        self._stage = DuckDBStage()
        self._conn: Connection | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""

    def __repr__(self) -> str:
        return f"PostgresSink({display_name(self._url)!r}, table={self.table!r})"

    @classmethod
    def from_target(cls, url: str, table: str) -> PostgresSink:
        """The sink `postgresql://...` names."""
        return cls(url, table)

    def committed_loads(self) -> list[CommittedLoad]:
        with self._reading("cannot read the ledger") as conn:
            if not _exists(conn, self._ident(LEDGER)):
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

    def ledger(self) -> pa.Table | None:
        """The loads of every ledger in the database, whichever schema holds it."""
        with self._reading("cannot read the ledger") as conn:
            schemas = conn.execute(_LEDGER_SCHEMAS, [LEDGER]).fetchall()
            rows: list[dict[str, Any]] = []
            for (schema,) in schemas:
                rows += _dicts(conn.execute(_select_all(sql.Identifier(schema, LEDGER))))
        if not schemas:
            return None
        names = ledger_schema().names  # a ledger from before lacks some: NULL
        return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], ledger_schema())

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            schema, name = _names(str(load.get("target") or ""))
        except ValueError:
            return []  # not a table name a load could have had
        table = sql.Identifier(*(p for p in (schema, name + _SUFFIX) if p))
        with self._reading("cannot read the rejects") as conn:
            if not _exists(conn, table):
                return []
            query = "SELECT line, byte_offset, reason, raw FROM {} WHERE load_id = %s ORDER BY line"
            return _dicts(conn.execute(sql.SQL(query).format(table), [load["load_id"]]))

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        with self._reading("cannot read the table") as conn:
            table = self._ident(self._name)
            if not _exists(conn, table):
                return None
            had = {name for (name,) in conn.execute(_ATTRIBUTES, [table.as_string(conn)])}
            present = [name for name in names if name in had]
            if not present:
                return pa.table({})
            selected = sql.SQL(", ").join(sql.Identifier(name) for name in present)
            cur = conn.execute(sql.SQL("SELECT {} FROM {}").format(selected, table))
            found = _dicts(cur)
            return pa.table({name: [row[name] for row in found] for name in present})

    # -- the Sink protocol -------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id = info, uuid.uuid4().hex
        self._conn = conn = self._connect()
        with self._errors("could not start the load"):
            # the lock is the session's: it outlives the commit below and ends with the
            # connection, even when the process is killed
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_LOCK_CLASS, self.table])
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", [_LOCK_CLASS])  # DDL, one at once
            if self._schema:
                conn.execute(self._sql("CREATE SCHEMA IF NOT EXISTS {schema}"))
            for ddl in (_TARGET_DDL, _LEDGER_DDL):
                conn.execute(self._sql(ddl))
            self._add_columns(conn, info.options.columns)
            if self._quarantine:  # no rejects table a load would never fill, as in DuckDB
                conn.execute(self._sql(_REJECTS_DDL))
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
        staged, duplicates, null_outputs, missing_metadata = self._stage.counts(report)
        statuses, tokens = self._stage.tally()
        typed = self._info.options.columns if self._info else ()
        names = [f'"{c.name}"' for c in typed]
        conn.execute(_STAGE_DDL.format(typed="".join(f", {n} TEXT" for n in names)))
        # each row's own source only where rows came from several (an atomic load of many)
        own = [*_COLUMNS, "_source"] if self._info and self._info.sources else _COLUMNS
        into = f"pg_temp._rl_stage ({', '.join([*own, *names])})"
        with conn.cursor() as cur:
            with cur.copy(f"COPY {into} FROM STDIN (FORMAT csv)") as copy:
                # batches of 16k rows (~4 MB of CSV): the DuckDB stage is at its peak meanwhile
                for batch in self._stage.winners(source, now, batch_rows=16384):
                    buffer = io.BytesIO()
                    columns = [*own, *(c.name for c in typed)]
                    pa_csv.write_csv(batch.select(columns), buffer, _CSV)
                    copy.write(buffer.getbuffer())
            with cur.copy("COPY pg_temp._rl_stage_rejects FROM STDIN") as copy:
                for r in self._stage.rejects().to_pylist():  # few: bad rows only
                    raw = _text(r["raw"])
                    copy.write_row((r["line"], r["byte_offset"], r["reason"], raw, r["source"]))
        merge = _MERGE.format(
            names="".join(f", {n}" for n in names),
            casts="".join(f", {n}::{pg_type(c.type)}" for n, c in zip(names, typed, strict=True)),
            sets="".join(f", {n} = EXCLUDED.{n}" for n in names),
            old="".join(f", t.{n}" for n in names),
            new="".join(f", EXCLUDED.{n}" for n in names),
        )
        upserted = conn.execute(self._sql(merge), {"source": source, "now": now}).rowcount
        unchanged = staged - duplicates - upserted
        if self._quarantine:
            keys = {"source": source, "now": now, "id": self._load_id}
            conn.execute(self._sql(_REJECTS_INSERT), keys)
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
            statuses=statuses,
            tokens=tokens,
        )

    def _add_columns(self, conn: Connection, columns: tuple[Column, ...]) -> None:
        """The declared typed columns the table lacks, added; one it has with another type is
        refused, before anything is written."""
        if not columns:
            return
        table = self._ident(self._name).as_string(conn)
        had: dict[str, str] = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [table],
            ).fetchall()
        )
        for column in columns:
            kind = pg_type(column.type)
            found = had.get(column.name)
            if found is not None and found != _PG_TYPES.get(column.type, (kind, kind))[1]:
                raise SinkError(
                    f"{display_name(self._url)}: column {column.name!r} of table "
                    f"{self.table!r} is {found}, this load declares it {kind}: give the column "
                    "another name (a column's type never changes under its rows)"
                )
            add = f'ALTER TABLE {{t}} ADD COLUMN IF NOT EXISTS "{column.name}" {kind}'
            conn.execute(self._sql(add))

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
            t=self._ident(self._name),
            rejects=self._ident(self._name + _SUFFIX),
            r=self._ident(self._name + _SUFFIX),
            ledger=self._ident(LEDGER),
            schema=sql.Identifier(self._schema or ""),
        )

    def _ident(self, name: str) -> sql.Identifier:
        """`name` in the table's schema (none given: the first of the search path)."""
        return sql.Identifier(self._schema, name) if self._schema else sql.Identifier(name)

    @property
    def _quarantine(self) -> bool:
        return self._info is not None and self._info.options.on_error == "quarantine"

    def _require(self) -> Connection:
        if self._conn is None:
            raise SinkError("PostgresSink: begin() was not called")
        return self._conn

    def _finish(self) -> None:
        self._stage.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ends the session: temp tables and the advisory lock go with it


def _names(table: str) -> tuple[str | None, str]:
    """(schema, table): plain identifiers, the table leaving room for `_rejects` in
    PostgreSQL's 63 bytes (longer names would be cut short silently), and not the ledger's."""
    schema, name = split_table(table)
    if len(name) > 63 - len(_SUFFIX) or name.lower() == LEDGER or len(schema or "") > 63:
        raise ValueError(
            f"invalid table name {table!r}: at most {63 - len(_SUFFIX)} characters, "
            f"and not {LEDGER}"
        )
    return schema, name


_ATTRIBUTES = """SELECT attname FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"""
_LEDGER_SCHEMAS = """SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND c.relkind IN ('r', 'p') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname"""


def _select_all(table: sql.Identifier) -> sql.Composed:
    return sql.SQL("SELECT * FROM {}").format(table)


def _password(url: str) -> str | None:
    found = urlsplit(url).password
    return unquote(found) if found else os.environ.get("PGPASSWORD") or None


def _text(raw: str) -> str:
    """PostgreSQL text holds no NUL character: a rejected line keeps the rest."""
    return raw.replace("\x00", "\ufffd")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _exists(conn: Connection, table: sql.Identifier) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table.as_string(conn)]).fetchone()
    return bool(row and row[0])


def _dicts(cur: psycopg.Cursor[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def pg_type(column_type: str) -> str:
    """A typed column's type in PostgreSQL (decimal(p,s) as numeric(p,s))."""
    digits = decimal_digits(column_type)
    return f"numeric({digits[0]},{digits[1]})" if digits else _PG_TYPES[column_type][0]

"""DuckDBSink: the embedded default.

A load stages its rows in a TEMP table (outside any transaction, so a failed statement costs only
its own chunk), then merges them into the target in one transaction: dedupe (last `seq` wins),
drop rows identical to what the table holds, delete the changed ids, insert, record the ledger.
The target has no PRIMARY KEY on purpose: the set-based merge keeps `id` unique, several times
faster than index maintenance, and the index's memory would not be bounded by `memory_limit`.

JSONL chunks are split into lines by Arrow and parsed by DuckDB's own JSON functions, in
parallel, keeping every value's text except numbers a double would round. Rows that need Python
(long decimals, NaN, duplicate keys, odd ids, anything DuckDB would not store exactly) are left
out of the native insert and parsed in Python; a chunk DuckDB cannot read at all is declined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..._errors import ParseError, SinkError
from ..._leftovers import remove_dead_spill_files, remove_dead_spools
from ..._memory import Budget, Share
from ..._model import (
    SEQ_BITS,
    BatchStats,
    CommitResult,
    LoadInfo,
    LoadOptions,
    LoadReport,
    RowBatch,
)
from ...parse import JsonlChunk, parse_chunk
from ...parse.jsonl import CHUNK_BYTES
from .. import ROW_SOURCE, CommittedLoad, SinkCapabilities, row_sources, running_row
from ..columns import (
    add_columns,
    casts,
    check_columns,
    ident,
    refuse,
    staged_ddl,
    tally,
    typed,
    with_values,
)
from .ledger import (
    committed_loads,
    finish_row,
    prepare_ledger,
    read_columns,
    read_ledger,
    read_rejects,
)
from .lines import longest, split_lines, usual_keys
from .mapped import mapped_rows_sql
from .names import Names
from .setup import check_database_file, configure, restore
from .sql import (
    _BLANK,
    _DUPS,
    _LINES,
    _NEEDS_PYTHON,
    _REJECTS_DDL,
    _REJECTS_INSERT,
    _SAME,
    _SAME_SQL,
    _STAGE,
    _STAGE_DDL,
    _STAGE_REJECTS,
    _STAGE_REJECTS_DDL,
    _TARGET_DDL,
    native_rows_sql,
)
from .tidy import ACTIVE_LOADS, check_target, create_target, mark_abandoned, temp_directory


class DuckDBSink:
    """Upserts rows by `id` into a DuckDB table (created on first use), one transaction a load.

    `database` is a file path (opened and closed per load) or an open connection (used as is,
    its settings untouched). With a path, the load's `LoadOptions.memory` budget caps DuckDB's
    buffers (the stage spills to `<database>.tmp/` beyond it) and sets its threads; the settings
    of a database the process already has open are put back when the load ends.
    """

    capabilities = SinkCapabilities(keeps_rejects=True, reads_jsonl=True, reads_ledger=True)

    def __init__(
        self,
        database: str | os.PathLike[str] | duckdb.DuckDBPyConnection = "results.duckdb",
        table: str = "results",
    ) -> None:
        self._names = Names.of(table)  # checks the name
        self.table = table
        self.database = database
        if not isinstance(database, duckdb.DuckDBPyConnection):
            check_database_file(os.fspath(database))  # before a load reads its source
        self._con: duckdb.DuckDBPyConnection | None = None
        self._saved: dict[str, str] = {}
        self._info: LoadInfo | None = None
        self._load_id = ""
        self._native_sql = ""
        self._plain_sql: dict[tuple[str, ...], str] = {}  # by the usual keys of the lines
        self._raised_to = 0
        # one of several DuckDB instances loading at once (load_many's workers and writer):
        # its slice of the memory and of the threads, (memory_parts, thread_parts)
        self.share = (1, 1)

    def __repr__(self) -> str:
        where = "<connection>" if self._owns_no_connection else os.fspath(self.database)  # type: ignore[arg-type]
        return f"DuckDBSink({where!r}, table={self.table!r})"

    @property
    def _owns_no_connection(self) -> bool:
        return isinstance(self.database, duckdb.DuckDBPyConnection)

    @classmethod
    def from_target(cls, location: str, table: str) -> DuckDBSink:
        """The sink `duckdb:PATH` (or a plain path) names."""
        return cls(location, table)

    def committed_loads(self) -> list[CommittedLoad]:
        return committed_loads(self.database, self.table)

    def ledger(self) -> pa.Table | None:
        return read_ledger(self.database)

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        return read_rejects(self.database, load)

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        return read_columns(self.database, self.table, names)

    # -- the Sink protocol -------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id, self._raised_to = info, uuid.uuid4().hex, 0
        con = self._connect()
        columns = info.options.columns
        self._plain_sql = {}
        self._native_sql = self._plain_insert(())
        if info.options.mapping is not None:  # None: SQL cannot map it, Python maps every line
            # with the typed columns' values read from each line's own parse
            mapping = info.options.mapping
            rows = mapped_rows_sql(mapping, _LINES, _BLANK, _NEEDS_PYTHON, columns)
            self._native_sql = f"INSERT INTO {_STAGE} {rows}" if rows else ""
        self._names = names = Names.of(self.table, con)
        if names.schema_sql:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {names.schema_sql}")
        check_target(con, names, _TARGET_DDL, self._where())  # before creating anything
        check_columns(con, self.table, columns, self._where(), names.schema)
        create_target(con, names.target)
        add_columns(con, names.target, columns)
        if info.options.on_error == "quarantine":  # no rejects table a load would never fill
            con.execute(_REJECTS_DDL.format(r=names.rejects))
        prepare_ledger(con, names)
        mark_abandoned(con, names, ACTIVE_LOADS)
        ACTIVE_LOADS.add(self._load_id)
        remove_dead_spools()  # temp copies of JSON arrays left by killed loads
        con.execute(_STAGE_DDL.format(values=staged_ddl(columns)))
        con.execute(_STAGE_REJECTS_DDL)
        row = running_row(self._load_id, self.table, info, _now())
        con.execute(
            f"INSERT INTO {names.ledger} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )

    def write(self, batch: RowBatch) -> None:
        con = self._require()
        if len(batch):
            table = batch.to_arrow()
            con.register("_rl_batch", table)
            try:
                rows = with_values("SELECT * FROM temp.main._rl_batch", self._options().columns)
                con.execute(f"INSERT INTO {_STAGE} {rows}")
            finally:
                con.unregister("_rl_batch")
        if batch.rejects:
            rejects = [(r.line, r.offset, r.reason, r.raw, r.source) for r in batch.rejects]
            con.executemany(f"INSERT INTO {_STAGE_REJECTS} VALUES (?, ?, ?, ?, ?)", rejects)

    def write_part(self, path: str, parquet: bool, base: int) -> int:
        """Stage the rows of a part (load_many: a DuckDB file's table `part`, or a Parquet
        file) straight from the file, `seq` from `base` on; how many. The Python route would
        turn every row into Python strings and back."""
        con = self._require()
        quoted = path.replace("'", "''")
        if parquet:
            rows = f"read_parquet('{quoted}', file_row_number = true)"
            number = "file_row_number"
        else:
            con.execute(f"ATTACH '{quoted}' AS _rl_part (READ_ONLY)")
            rows, number = "_rl_part.main.part", "rowid"
        try:
            select = f"""SELECT {int(base)} + {number} AS seq, id, output::JSON AS output,
                metadata::JSON AS metadata, url, extra::JSON AS extra FROM {rows}"""
            row = con.execute(
                f"INSERT INTO {_STAGE} {with_values(select, self._options().columns)}"
            ).fetchall()
        finally:
            if not parquet:
                con.execute("DETACH _rl_part")
        return int(row[0][0]) if row else 0

    @staticmethod
    def prepare_jsonl(chunk: JsonlChunk) -> JsonlChunk:
        """Split the chunk into Arrow lines ahead of `write_jsonl`, in the reading thread, so
        it overlaps with DuckDB's work on the chunk before. (Thread-safe: no state.)"""
        return dataclasses.replace(chunk, prepared=(split_lines(chunk),))

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None:
        """Stage a JSONL chunk with DuckDB's JSON functions; None if Python must parse it."""
        con = self._require()
        if not self._native_sql or "." in self._options().key:
            return None  # a mapping SQL cannot express, or a dotted key: Python reads them
        self._fit(len(chunk.data))
        ahead = chunk.prepared
        lines = ahead[0] if isinstance(ahead, tuple) else split_lines(chunk)
        if lines is None:
            return None  # not UTF-8: Python finds the line and says so
        if longest(lines) > self._options().max_line_bytes:
            return None  # DuckDB would take it: Python rejects it by on_error, like any bad row
        sql = self._native_sql
        if self._options().mapping is None:
            sql = self._plain_insert(usual_keys(chunk.data))
        con.register(_LINES, lines)
        try:
            row = con.execute(sql).fetchone()
        except (duckdb.Error, UnicodeDecodeError):
            # malformed somewhere in the chunk: Python finds the line and the reason. (DuckDB's
            # message may quote a lone surrogate as raw bytes, which Python cannot decode.)
            return None
        finally:
            con.unregister(_LINES)
        stats = BatchStats(int(row[0]) if row else 0)  # null counts: at commit, from the stage
        if stats.rows < lines.num_rows:  # blank lines, or rows that need Python
            return self._parse_left_out(chunk, lines, stats)
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
            error = (error or "aborted")[:500]
            finish_row(con, self._names.ledger, self._load_id, status="failed", error=error)

    # -- internals -----------------------------------------------------------------------------

    def _plain_insert(self, usual: tuple[str, ...]) -> str:
        """The native insert of plain lines whose usual keys are `usual` (native_rows_sql)."""
        found = self._plain_sql.get(usual)
        if found is None:
            rows = native_rows_sql(self._options().key, usual)
            found = f"INSERT INTO {_STAGE} {with_values(rows, self._options().columns)}"
            self._plain_sql[usual] = found
        return found

    def _parse_left_out(
        self, chunk: JsonlChunk, lines: pa.Table, stats: BatchStats
    ) -> BatchStats | None:
        """Parse in Python the lines the native insert left out (exact numbers, odd rows).
        If one is bad, decline the chunk: the Python parser reports it with the pipeline's
        on_error handling, and its true line number."""
        con = self._require()
        first, last = chunk.first_line, chunk.first_line + lines.num_rows - 1
        staged = con.execute(f"SELECT seq FROM {_STAGE} WHERE seq BETWEEN ? AND ?", [first, last])
        staged_seq = pa.array([seq for (seq,) in staged.fetchall()], pa.int64())
        wanted = pc.invert(pc.is_in(lines["seq"], value_set=staged_seq))
        ends = pc.cumulative_sum(pc.binary_length(lines["raw"]))  # lines keep their newline
        fixed = RowBatch()
        options = self._options()
        for i in pc.indices_nonzero(wanted).to_pylist():
            line = lines["raw"][i].as_py().encode()
            offset = chunk.offset + ends[i].as_py() - len(line)
            raw = line.removesuffix(b"\n")
            if not raw or raw.isspace():
                continue  # a blank line (CRLF, spaces): no row, as in the Python parser
            one = parse_chunk(JsonlChunk(chunk.source, raw, chunk.first_line + i, offset), options)
            if one.rejects:
                con.execute(f"DELETE FROM {_STAGE} WHERE seq BETWEEN ? AND ?", [first, last])
                return None
            fixed.extend(one)  # no rejects: those returned above
        self.write(fixed)
        stats.rows += len(fixed)
        return stats

    def _fit(self, size: int) -> None:
        """Raise the memory limit for a chunk far above the usual size (a line of many MB):
        DuckDB needs a few copies of its longest value in memory at once."""
        limit = self._budget().duckdb_memory
        if self._owns_no_connection or size < 2 * CHUNK_BYTES:
            return
        need = 4 * size
        if need > max(limit, self._raised_to):
            self._raised_to = need
            self._require().execute(f"SET memory_limit = '{need // 2**20}MB'")

    def _budget(self) -> Budget | Share:
        budget = self._options().budget()
        if self.share == (1, 1):
            return budget
        return Share.of(budget, *self.share)

    def _options(self) -> LoadOptions:
        assert self._info is not None
        return self._info.options

    def _merge(self, con: duckdb.DuckDBPyConnection, report: LoadReport | None) -> CommitResult:
        """Last seq wins; unchanged rows stay as they are (even `_loaded_at`).

        The dedupe is an anti-join against the few duplicated ids, not a window over the stage:
        a window would hold every staged row in memory, this streams them.
        """
        t, now = self._names.target, _now()
        source = self._info.source if self._info else ""
        columns = self._options().columns
        r = report or LoadReport(source)
        r.bad_rows += self.refuse_bad_values(con, source)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_DUPS} AS SELECT id, max(seq) AS seq,
                count(*) - 1 AS extra_rows FROM {_STAGE} GROUP BY id HAVING count(*) > 1"""
        )
        duplicates = _scalar(con, f"SELECT coalesce(sum(extra_rows), 0) FROM {_DUPS}")
        winners = f"{_STAGE} s"
        if duplicates:
            winners += f" ANTI JOIN {_DUPS} d ON s.id = d.id AND s.seq <> d.seq"
        unchanged, upserted = 0, 0
        statuses, tokens = tally(con, f"(SELECT s.* FROM {winners})", columns)
        if _scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1)"):
            staged = "".join(f", {cast}" for cast in casts(columns, "s."))
            stored = "".join(f", {ident(c.name)}" for c in columns)
            con.execute(_SAME_SQL.format(t=t, winners=winners, staged=staged, stored=stored))
            unchanged = _scalar(con, f"SELECT count(*) FROM {_SAME}")
            distinct = _scalar(con, f"SELECT count(*) FROM {_STAGE}") - duplicates
            if unchanged == distinct:  # a re-load: nothing to delete or insert
                winners = ""
            else:
                changed = f"SELECT id FROM {_STAGE} EXCEPT SELECT id FROM {_SAME}"
                con.execute(f"DELETE FROM {t} WHERE id IN ({changed})")
                winners += f" ANTI JOIN {_SAME} x ON x.id = s.id"
        if winners:
            # BY NAME: a table the user created with the columns in another order still
            # gets each value in its own column
            row = con.execute(
                f"""INSERT INTO {t} BY NAME SELECT s.id, s.output,
                    coalesce(s.metadata, '{{}}'::JSON) AS metadata, s.url, s.extra,
                    {ROW_SOURCE} AS _source, $now::TIMESTAMP AS _loaded_at{typed(columns, "s.")}
                FROM {winners}""",
                {**row_sources(self._info), "now": now},
            ).fetchone()
            upserted = int(row[0]) if row else 0
        if self._options().on_error == "quarantine":
            con.execute(
                _REJECTS_INSERT.format(r=self._names.rejects, stage=_STAGE_REJECTS),
                {"source": source, "now": now, "load_id": self._load_id},
            )
        null_outputs, missing_metadata = con.execute(
            f"""SELECT count(*) FILTER (output IS NULL), count(*) FILTER (metadata IS NULL)
                FROM {_STAGE}"""
        ).fetchone() or (0, 0)
        finish_row(
            con,
            self._names.ledger,
            self._load_id,
            status="committed",
            finished_at=now,
            job_status=r.status,
            rows_read=r.rows_read,
            rows_upserted=upserted,
            rows_unchanged=unchanged,
            duplicates=duplicates,
            bad_rows=r.bad_rows,
            bytes=r.bytes_read,
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

    def refuse_bad_values(self, con: duckdb.DuckDBPyConnection, source: str) -> int:
        """The staged rows whose typed values do not fit their columns, by on_error: the
        load fails naming the first, or they are dropped (and kept as rejects); how many."""
        options = self._options()
        refused = refuse(con, _STAGE, options.columns)
        if not refused:
            return 0
        if options.on_error == "fail":
            seq, reason, _ = refused[0]
            own, line = self._line_of(seq)
            raise ParseError(own or source, line, -1, reason, hint="")
        seqs = [seq for seq, _, _ in refused]
        con.execute(f"DELETE FROM {_STAGE} WHERE list_contains(?, seq)", [seqs])
        rejects = []
        for seq, reason, value in refused:
            own, line = self._line_of(seq)
            rejects.append([line, reason, value, own])
        con.executemany(
            f"INSERT INTO {_STAGE_REJECTS} (line, byte_offset, reason, raw, source)"
            " VALUES (?, NULL, ?, ?, ?)",
            rejects,
        )
        return len(refused)

    def _line_of(self, seq: int) -> tuple[str | None, int]:
        """A staged row's own source (in an atomic load of many: the one it came from by its
        seq; else None, the load's) and line number in it."""
        sources = self._info.sources if self._info else ()
        if not sources:
            return None, seq
        return sources[seq >> SEQ_BITS], seq & ((1 << SEQ_BITS) - 1)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if isinstance(self.database, duckdb.DuckDBPyConnection):
            self._con = self.database
            return self._con
        path = os.fspath(self.database)
        check_database_file(path)
        try:
            con = duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise SinkError(
                    f"{path} is in use by another process; wait for it to finish, "
                    "or load into another database file"
                ) from None
            raise SinkError(f"{path}: cannot open the database: {exc}") from None
        self._saved = configure(con, self._budget())
        remove_dead_spill_files(temp_directory(con))  # a killed load's, before we spill
        self._con = con
        return con

    def _where(self) -> str:
        return "the connection" if self._owns_no_connection else os.fspath(self.database)  # type: ignore[arg-type]

    def _require(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise SinkError("DuckDBSink: begin() was not called")
        return self._con

    @staticmethod
    def _rollback(con: duckdb.DuckDBPyConnection) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction may be open
            con.execute("ROLLBACK")

    def _finish(self) -> None:
        ACTIVE_LOADS.discard(self._load_id)
        con, self._con = self._con, None
        if con is None:
            return
        for name in (_STAGE, _STAGE_REJECTS, _DUPS, _SAME):  # all in `temp`: never a user's
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP TABLE IF EXISTS {name}")
        if not self._owns_no_connection:
            restore(con, self._saved)  # a notebook may hold the same database open
            con.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)

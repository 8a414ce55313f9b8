"""A load's rows staged in an in-process DuckDB, for sinks whose engine lives elsewhere.

Postgres and Delta take their rows from here at commit, deduped (the last `seq` of an id wins).
Staging goes through a DuckDBSink on the stage's own connection, so JSONL chunks are read by
DuckDB's JSON functions exactly as a DuckDB load reads them (the same rows left to Python, the
same numbers kept exact). Its DuckDB takes the load's memory budget and threads (`--memory`,
`--threads`: _budget.py) as a DuckDB load's does, less COMMIT_MEMORY for the sink's writer, and
spills to disk beyond them.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from .._columns import Column
from .._memory import MIN_MEMORY, Budget, MiB
from .._model import BatchStats, LoadInfo, LoadReport, RowBatch
from ..parse import JsonlChunk
from . import ROW_SOURCE, row_sources
from .columns import casts, tally, typed
from .duckdb.names import quote
from .duckdb.setup import configure
from .duckdb.sink import DuckDBSink
from .duckdb.sql import _STAGE, _STAGE_REJECTS

COMMIT_MEMORY = 32 * MiB
# the last seq of each id: an anti-join against the few duplicated ids streams, a window would not
_WINNERS = f"""SELECT s.id, s.output::VARCHAR AS output,
    coalesce(s.metadata, '{{}}')::VARCHAR AS metadata, s.url, s.extra::VARCHAR AS extra,
    {ROW_SOURCE} AS _source, $now::TIMESTAMPTZ AS _loaded_at
FROM {_STAGE} s ANTI JOIN _rl_dups d ON s.id = d.id AND s.seq <> d.seq"""
# The winners new or changed against the target's rows `_rl_current` (the same columns as text).
# As DuckDBSink compares, by DuckDB's 64-bit hash of the fields, and the ids by their hash too: a
# join of two 8-byte keys, small and spilling within memory_limit (deltalake's join cannot). The
# target's keys are taken first, on their own: scanning its wide rows during the join would not
# fit in a small memory_limit. A changed row passes for unchanged only if both hashes equal those
# of its own old version (or of another row): odds of about 2^-128 a row.
# `{{typed}}`: the typed columns after the row's fields (`, a, b`), hashed with them.
_CURRENT_KEYS = """CREATE OR REPLACE TEMP TABLE _rl_current_keys AS
SELECT hash(id) AS key, {digest} AS digest FROM _rl_current"""
_CHANGED = """CREATE OR REPLACE TEMP TABLE _rl_changed AS
SELECT w.* EXCLUDE (key, digest) FROM (
    SELECT *, hash(id) AS key, hash(output, metadata, url, extra{typed}) AS digest
    FROM ({winners})) w
ANTI JOIN _rl_current_keys c ON c.key = w.key AND c.digest = w.digest"""

_COLUMNS = "id, output, metadata, url, extra, _source, _loaded_at"
# Parquet written by DuckDB's COPY: streamed, in parallel, within the memory limit. Files of
# about 128 MB (Delta's usual target size), unique names, beside the table's other files.
_COPY = """COPY ({rows}) TO '{directory}' (FORMAT parquet, FILENAME_PATTERN 'part-{{uuid}}',
    APPEND, FILE_SIZE_BYTES '128MB', ROW_GROUP_SIZE 65536, RETURN_STATS)"""


class DuckDBStage:
    """begin, write / write_jsonl, then counts and winners; close in any case."""

    def __init__(self, commit_memory: int = COMMIT_MEMORY) -> None:
        self._commit_memory = commit_memory  # the sink's writer's, outside DuckDB's limit
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._sink: DuckDBSink | None = None
        self._only_changed = False
        self._columns: tuple[Column, ...] = ()
        self._stored: list[tuple[str, str]] | None = None
        self._info: LoadInfo | None = None
        self._budget: Budget | None = None

    prepare_jsonl = staticmethod(DuckDBSink.prepare_jsonl)

    def begin(self, info: LoadInfo) -> None:
        self._spill = tempfile.TemporaryDirectory(prefix="resultloader-stage-")
        con = duckdb.connect()
        budget = info.options.budget()
        # less for DuckDB than a DuckDB load gives it: at commit the sink's own writer holds
        # its batches outside DuckDB (Postgres's COPY buffers, deltalake's log and commit)
        memory = max(MIN_MEMORY, budget.memory - self._commit_memory)
        budget = dataclasses.replace(budget, memory=memory)
        configure(con, budget)  # a connection of its own: nothing to restore
        self._budget = info.options.budget()
        con.execute("SET temp_directory = ?", [self._spill.name])
        con.execute("SET TimeZone = 'UTC'")
        self._columns = info.options.columns
        self._con, self._sink, self._info = con, DuckDBSink(con, "unused_target"), info
        self._sink.begin(info)  # its stage tables are ours; its own table stays empty

    def reserve(self, memory: int) -> None:
        """Lower DuckDB's memory limit so that the sink's writer may hold `memory` outside it
        from now on (at commit, beside what begin left it): DuckDB spills what no longer fits."""
        budget = self._budget
        assert budget is not None, "begin() first"
        smaller = dataclasses.replace(budget, memory=max(MIN_MEMORY, budget.memory - memory))
        self._require().execute(f"SET memory_limit = '{smaller.duckdb_memory // MiB}MiB'")

    def write(self, batch: RowBatch) -> None:
        assert self._sink is not None
        self._sink.write(batch)

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None:
        assert self._sink is not None
        return self._sink.write_jsonl(chunk)

    def counts(self, report: LoadReport) -> tuple[int, int, int, int]:
        """(rows staged, duplicates, null outputs, rows without metadata), after the rows
        whose typed values do not fit their columns are refused (counted in `report`)."""
        con = self._require()
        assert self._sink is not None
        report.bad_rows += self._sink.refuse_bad_values(con, report.source)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _rl_dups AS SELECT id, max(seq) AS seq,"
            f" count(*) - 1 AS extra_rows FROM {_STAGE} GROUP BY id HAVING count(*) > 1"
        )
        ((staged, nulls, missing),) = con.execute(
            "SELECT count(*), count(*) FILTER (output IS NULL),"
            f" count(*) FILTER (metadata IS NULL) FROM {_STAGE}"
        ).fetchall()
        ((duplicates,),) = con.execute(
            "SELECT coalesce(sum(extra_rows), 0) FROM _rl_dups"
        ).fetchall()
        return int(staged), int(duplicates), int(nulls), int(missing)

    def store_as(self, columns: Sequence[tuple[str, str]]) -> None:
        """The typed columns the winners carry, in this order, each cast to the DuckDB type
        given: the target's columns (a Delta table's), the load's declared ones filled and any
        other NULL. Without it: the load's declared columns, as they are cast."""
        self._stored = list(columns)

    def winners(self, source: str, now: datetime, batch_rows: int = 65536) -> pa.RecordBatchReader:
        """The last row of each id, with `_source` and `_loaded_at`, streamed (after counts);
        after keep_changed, only those it kept."""
        con = self._require()
        if self._only_changed:
            return con.table("_rl_changed").to_arrow_reader(batch_rows)
        rel = con.sql(self._winners(), params=self._params(source, now))
        return rel.to_arrow_reader(batch_rows)

    def _winners(self) -> str:
        """_WINNERS with the typed columns after `_loaded_at`."""
        if self._stored is None:
            return _WINNERS.replace(" AS _loaded_at", f" AS _loaded_at{typed(self._columns, 's.')}")
        declared = dict(
            zip((c.name for c in self._columns), casts(self._columns, "s."), strict=True)
        )
        stored = "".join(
            f", CAST({declared.get(name, 'NULL')} AS {kind}) AS {quote(name)}"
            for name, kind in self._stored
        )
        return _WINNERS.replace(" AS _loaded_at", f" AS _loaded_at{stored}")

    def _typed_names(self) -> list[str]:
        """The typed columns the winners carry, quoted."""
        if self._stored is None:
            return [quote(c.name) for c in self._columns]
        return [quote(name) for name, _ in self._stored]

    def tally(self) -> tuple[dict[str, int] | None, int | None]:
        """The winners by `status` and their `total_tokens`, where declared (after counts)."""
        winners = (
            f"(SELECT s.* FROM {_STAGE} s ANTI JOIN _rl_dups d ON s.id = d.id AND s.seq <> d.seq)"
        )
        return tally(self._require(), winners, self._columns)

    def keep_changed(self, current: list[str] | object, source: str, now: datetime) -> int:
        """Keep the winners that are not in `current` (the target's Parquet files, or an Arrow
        table, dataset or reader of its rows) as they are; returns how many (after counts)."""
        con = self._require()
        if isinstance(current, list):
            con.read_parquet(current, union_by_name=True).create_view("_rl_current")
        else:
            con.register("_rl_current", current)
        try:
            had = {str(name) for (name, *_) in con.execute("DESCRIBE _rl_current").fetchall()}
            con.execute(_CURRENT_KEYS.format(digest=self.current_digest(had)))
        finally:
            con.execute("DROP VIEW IF EXISTS _rl_current")
        changed = self.keep_changed_keys(source, now)
        con.execute("DROP TABLE _rl_current_keys")
        return changed

    def compared_columns(self) -> list[str]:
        """The typed columns a row's digest covers besides its fields: the load's own columns
        only, as DuckDBSink compares (after store_as): a load that does not declare a column
        leaves an unchanged row's value in it as it was."""
        declared = {c.name for c in self._columns}
        return [name for name, _ in self._stored or [] if name in declared]

    def current_digest(self, had: set[str]) -> str:
        """The digest of a target's row (of the columns `had`) that keep_changed compares with
        the winners': the hash of its fields and of the compared_columns, cast as the winners
        carry them (NULL where the row lacks one)."""
        compared = "".join(f", {v}" for v in self._stored_values(had, declared_only=True))
        return f"hash(output, metadata, url, extra{compared})"

    def keep_changed_keys(self, source: str, now: datetime) -> int:
        """keep_changed against the target's `_rl_current_keys` (`key`: hash(id), `digest`:
        current_digest of its row), a table the caller made on `connection` (with any columns
        after those); returns how many winners it kept (after counts)."""
        con = self._require()
        typed_winners = "".join(f", {quote(name)}" for name in self.compared_columns())
        con.execute(
            _CHANGED.format(typed=typed_winners, winners=self._winners()), self._params(source, now)
        )
        self._only_changed = True
        ((changed,),) = con.execute("SELECT count(*) FROM _rl_changed").fetchall()
        return int(changed)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The stage's own DuckDB connection (after begin), for a sink's queries over it."""
        return self._require()

    def files_with_changed_ids(self, files: Sequence[str]) -> list[str]:
        """Which of the target's Parquet `files` hold an id that keep_changed kept: the files
        whose rows it replaces."""
        rel = self._require().sql(
            "SELECT DISTINCT filename FROM read_parquet($files, filename = true)"
            " SEMI JOIN _rl_changed c USING (id)",
            params={"files": list(files)},
        )
        return [str(name) for (name,) in rel.fetchall()]

    def write_parquet(
        self, directory: str, source: str, now: datetime, replacing: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Write the rows to store as Parquet files into `directory`: the winners (after
        keep_changed, the changed ones) and, from the `replacing` files, every row whose id
        they do not replace. One dict a file: `filename`, `count`, `file_size_bytes` and
        `column_statistics` (DuckDB's own: `null_count`, `min`, `max`, `min_is_exact`...)."""
        con = self._require()
        rows, params = self.winners_query(source, now)
        if replacing:
            params["files"] = list(replacing)
            rows = f"SELECT {self._all_columns()} FROM ({rows}) UNION ALL {self._kept(replacing)}"
        sql = _COPY.format(rows=rows, directory=directory.replace("'", "''"))
        result = con.execute(sql, params)
        names = [d[0] for d in result.description or ()]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def winners_query(self, source: str, now: datetime) -> tuple[str, dict[str, Any]]:
        """The query of `winners` and its parameters, for a sink's own statement over them."""
        if self._only_changed:
            return "SELECT * FROM _rl_changed", {}
        return self._winners(), self._params(source, now)

    def _all_columns(self) -> str:
        return _COLUMNS + "".join(f", {name}" for name in self._typed_names())

    def _kept(self, files: Sequence[str]) -> str:
        """The rows of the target's `files` that the winners do not replace, as the winners
        carry them (`$files`)."""
        con = self._require()
        schema = con.execute("SELECT DISTINCT name FROM parquet_schema(?)", [list(files)])
        had = {str(name) for (name,) in schema.fetchall()}
        values = zip(self._stored_values(had), self._typed_names(), strict=True)
        old = _COLUMNS + "".join(f", {value} AS {name}" for value, name in values)
        return f"""SELECT {old} FROM read_parquet($files, union_by_name = true) o
            ANTI JOIN _rl_changed c USING (id)"""

    def _stored_values(self, had: set[str], declared_only: bool = False) -> list[str]:
        """The typed columns of the target's rows, as the winners carry them (or only those
        the load declares): cast to their type where the rows have the column (`had`), else
        NULL."""
        stored = self._stored or []
        if declared_only:
            declared = {c.name for c in self._columns}
            stored = [(name, kind) for name, kind in stored if name in declared]
        return [
            f"CAST({quote(name) if name in had else 'NULL'} AS {kind})" for name, kind in stored
        ]

    def rejects(self) -> pa.Table:
        """(line, byte_offset, reason, raw, source) of the rejects written (source: None, or
        the file of an atomic load of many that it came from)."""
        rel = self._require().sql(f"SELECT * FROM {_STAGE_REJECTS}")
        return rel.to_arrow_table()

    def close(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.abort("staged only")  # drops the stage tables
        con, self._con = self._con, None
        if con is not None:
            con.close()
        spill, self._spill = self._spill, None
        if spill is not None:
            spill.cleanup()

    def _require(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None, "begin() first"
        return self._con

    def _params(self, source: str, now: datetime) -> dict[str, Any]:
        """`$source` (each row's, see ROW_SOURCE) and `$now` of the winners' query."""
        return {**row_sources(self._info), "source": source, "now": now}

"""DeltaSink: upserts into a Delta Lake table with `deltalake` (extra `resultloader[delta]`).

The table lives at PATH (local or `s3://bucket/prefix`); its ledger and rejects are Delta tables
at `PATH/_resultloader_loads` and `PATH/_rejects` (names starting with `_`, which Delta readers
and vacuum leave alone). JSON values are stored as their exact text in string columns.

A load stages its rows in an in-process DuckDB (sinks/_stage.py: JSONL read by DuckDB as for a
DuckDB load, within the load's memory budget), so the last `seq` of an id can win: Delta refuses
duplicate source keys. At commit DuckDB keeps the winners that are new or differ from the table's
current rows (by id and a hash of the fields, as DuckDBSink compares; its join spills, deltalake's
cannot): none, no commit (a re-run). A local plain table then gets them as DuckDB's Parquet files
in one commit (_delta_files.py); elsewhere (S3) deltalake writes them: one write into a table
without files, else one MERGE by `id`. Killed before its commit, the table is as it was (files
written but never committed are ignored by readers). Rejects are committed just before it (those
not kept already), tagged with the load's id, so a load that then fails leaves them next to a
`failed` (or `running`, later `abandoned`) ledger row rather than losing them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from ..._errors import SinkError
from ..._leftovers import alive
from ..._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from ..._names import check_name
from ..._redact import display_name
from ...parse import JsonlChunk
from .. import LEDGER, CommittedLoad, SinkCapabilities, ledger_schema, running_row
from .._stage import DuckDBStage
from .files import commit, discard, local_files, writes_files
from .types import check_types, stored_types, table_schema, with_columns

REJECTS = "_rejects"
_FIELDS = ("output", "metadata", "url", "extra")
_TS = pa.timestamp("us", "UTC")
TABLE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("output", pa.string()),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("extra", pa.string()),
        pa.field("_source", pa.string()),
        pa.field("_loaded_at", _TS),
    ]
)
REJECTS_SCHEMA = pa.schema(
    [
        ("_source", pa.string()),
        ("line", pa.int64()),
        ("byte_offset", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("_loaded_at", _TS),
        ("load_id", pa.string()),
    ]
)
# the ledger's columns, and where the load runs and its process: a killed one's `running` row
# is marked `abandoned` by a later load
LEDGER_SCHEMA = ledger_schema().append(pa.field("host", pa.string()))
LEDGER_SCHEMA = LEDGER_SCHEMA.append(pa.field("pid", pa.int64()))
_REJECT_KEY = ("_source", "line", "byte_offset", "reason", "raw")
# row groups of 64k rows, not one of the whole file: deltalake's writer holds a row group in memory
_WRITER = WriterProperties(max_row_group_size=65536)


class DeltaSink:
    """Upserts rows by `id` into the Delta table at `path` (created on first use), one commit a
    load. `storage_options` go to deltalake (for S3: credentials, endpoint, region); by default
    it reads the usual AWS_* environment variables."""

    capabilities = SinkCapabilities(keeps_rejects=True, reads_jsonl=True, reads_ledger=True)
    prepare_jsonl = staticmethod(DuckDBStage.prepare_jsonl)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path).rstrip("/")
        if "://" not in self.path:
            self.path = os.path.abspath(self.path)
        self.storage_options = storage_options
        self._stage: DuckDBStage | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""

    def __repr__(self) -> str:
        return f"DeltaSink({display_name(self.path)!r})"

    @classmethod
    def from_target(cls, path: str, table: str) -> DeltaSink:
        """The sink `delta:PATH` names: the path is the table, `table` the default only."""
        if "." in table:  # a location is the table's whole name: delta:lake/staging/results
            raise ValueError(
                f"a Delta table has no schema: table {table!r} does not apply; its location "
                "names it (delta:PATH, e.g. delta:lake/staging/results)"
            )
        check_name("table", table)
        if table != "results":  # the default, which `--table` always passes
            raise ValueError(
                f"a Delta target is a table itself: table {table!r} does not apply (its "
                "location is delta:PATH)"
            )
        return cls(path)

    def committed_loads(self) -> list[CommittedLoad]:
        where = f"{self.path}/{LEDGER}"
        with self._errors("cannot read the ledger"):
            if (ledger := self._existing(where)) is None:
                return []
            has_version = "version" in {f.name for f in ledger.schema().fields}
            columns = ["source", "provider", "version"] if has_version else ["source", "provider"]
            rows = ledger.to_pyarrow_table(columns=columns, filters=[("status", "=", "committed")])
        return [
            CommittedLoad(r["source"], r["provider"], r.get("version")) for r in rows.to_pylist()
        ]

    def ledger(self) -> pa.Table | None:
        with self._errors("cannot read the ledger"):
            if (table := self._existing(f"{self.path}/{LEDGER}")) is None:
                return None
            rows: pa.Table = table.to_pyarrow_table()
            return rows

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._errors("cannot read the rejects"):
            if (table := self._existing(f"{self.path}/{REJECTS}")) is None:
                return []
            found = table.to_pyarrow_table(
                columns=["line", "byte_offset", "reason", "raw"],
                filters=[("load_id", "=", load["load_id"])],
            )
        return sorted(found.to_pylist(), key=lambda r: r["line"] or 0)

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        with self._errors("cannot read the table"):
            if (table := self._existing(self.path)) is None:
                return None
            had = {f.name for f in table.schema().fields}
            present = [name for name in names if name in had]
            if not present:
                return pa.table({})
            rows: pa.Table = table.to_pyarrow_table(columns=present)
            return rows

    def _existing(self, path: str) -> DeltaTable | None:
        """The Delta table at `path`, or None. (Not `is_deltatable`: against an S3 endpoint
        other than AWS it waits out its retries, three minutes, where opening answers at once.)"""
        try:
            return DeltaTable(path, storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    # -- the Sink protocol -------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id = info, uuid.uuid4().hex
        with self._errors("could not start the load"):
            if (existing := self._existing(self.path)) is not None:  # before anything is written
                check_types(existing, info.options.columns, display_name(self.path))
            self._table(self.path, with_columns(TABLE_SCHEMA, info.options.columns))
            if info.options.on_error == "quarantine":  # made by the first such load, as in DuckDB
                self._table(f"{self.path}/{REJECTS}", REJECTS_SCHEMA)
            self._abandon_killed()
            ledger_row = pa.Table.from_pylist([self._ledger_row(info)], schema=LEDGER_SCHEMA)
            self._append(LEDGER, LEDGER_SCHEMA, ledger_row)
        self._stage = DuckDBStage()
        self._stage.begin(info)

    def write(self, batch: RowBatch) -> None:
        self._require().write(batch)

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None:
        return self._require().write_jsonl(chunk)

    def commit(self, report: LoadReport) -> CommitResult:
        stage = self._require()
        try:
            with self._errors("the load could not be committed"):
                result = self._merge(stage, report)
        except BaseException as exc:
            self._mark(status="failed", error=str(exc) or type(exc).__name__)
            raise
        finally:
            self._finish()
        return result

    def abort(self, error: str | None = None) -> None:
        if self._stage is not None:
            self._mark(status="failed", error=error or "aborted")
        self._finish()

    # -- internals -----------------------------------------------------------------------------

    def _merge(self, stage: DuckDBStage, report: LoadReport) -> CommitResult:
        source = self._info.source if self._info else ""
        now = datetime.now(timezone.utc)
        staged, duplicates, nulls, missing = stage.counts(report)
        statuses, tokens = stage.tally()
        rejects = stage.rejects()
        if rejects.num_rows:
            n = rejects.num_rows
            each = pc.coalesce(rejects["source"], pa.scalar(source, pa.string()))
            rejects = rejects.append_column("_source", each)
            rejects = rejects.append_column("_loaded_at", pa.array([now] * n, _TS))
            rejects = rejects.append_column("load_id", pa.array([self._load_id] * n))
            self._add_rejects(rejects.select(REJECTS_SCHEMA.names))
        upserted = self._upsert(stage, source, now, staged - duplicates) if staged else 0
        unchanged = staged - duplicates - upserted
        self._mark(
            status="committed",
            job_status=report.status,
            rows_read=report.rows_read,
            rows_upserted=upserted,
            rows_unchanged=unchanged,
            duplicates=duplicates,
            bad_rows=report.bad_rows,
            bytes=report.bytes_read,
        )
        return CommitResult(upserted, unchanged, duplicates, nulls, missing, statuses, tokens)

    def _upsert(self, stage: DuckDBStage, source: str, now: datetime, winners: int) -> int:
        """Write the winners into the table as it is now; returns the rows inserted or updated.
        DuckDB keeps the winners new or changed (its join spills, deltalake's cannot): none, no
        commit. A local plain table gets them as DuckDB's Parquet files (_delta_files.py);
        otherwise (S3) deltalake writes them: one write into a table without files, else one
        merge."""
        table = DeltaTable(self.path, storage_options=self.storage_options)
        had = table_schema(table)
        schema = with_columns(had, self._info.options.columns if self._info else ())
        stage.store_as(stored_types(schema, TABLE_SCHEMA))
        # a new column: in the commit's metadata, which a commit of DuckDB's files (an append)
        # cannot change unless the table has no files yet (then it is an overwrite)
        evolves = len(schema) > len(had)
        with self._one_writer():
            files = writes_files(table, self.path, had, TABLE_SCHEMA)
            if files and not (evolves and table.file_uris()):
                return self._write_files(table, stage, source, now, winners, schema)
            if not table.file_uris():
                rows = stage.winners(source, now).cast(schema)
                # overwrite with a predicate, not an append: it fails (rather than duplicating
                # ids) if another writer added rows since the table was read as empty
                write_deltalake(
                    table,
                    rows,
                    mode="overwrite",
                    predicate="true",
                    schema_mode="merge",
                    writer_properties=_WRITER,
                )
                return winners
            current = self._current_rows(table)
            if current is not None and not stage.keep_changed(current, source, now):
                return 0
            rows = stage.winners(source, now).cast(schema)
            merged = self._merge_rows(table, rows, schema, had)
            return int(merged["num_target_rows_inserted"] + merged["num_target_rows_updated"])

    def _write_files(
        self,
        table: DeltaTable,
        stage: DuckDBStage,
        source: str,
        now: datetime,
        winners: int,
        schema: pa.Schema,
    ) -> int:
        """The rows new or changed as new files, the files holding changed rows' old versions
        rewritten without them, all in one commit (none if nothing changed)."""
        files = local_files(table, self.path)
        replacing: list[str] = []
        if files:
            winners = stage.keep_changed(list(files), source, now)
            if not winners:
                return 0
            replacing = stage.files_with_changed_ids(list(files))
        written = stage.write_parquet(self.path, source, now, replacing)
        try:
            metadata = {"resultloader.load_id": self._load_id, "resultloader.rows": str(winners)}
            commit(table, written, [files[f] for f in replacing], metadata, schema)
        except BaseException:
            discard(written)
            raise
        return winners

    def _current_rows(self, table: DeltaTable) -> list[str] | ds.Dataset | None:
        """The table's rows for DuckDB to compare with: its Parquet files where they are local
        (DuckDB reads them within its memory limit), else deltalake's Arrow dataset; None if the
        table uses a feature neither reads as plain rows (deletion vectors, column mapping)."""
        reader = table.protocol().reader_features or []
        if {"deletionVectors", "columnMapping"} & set(reader):
            return None
        if "://" not in self.path:
            return table.file_uris()
        dataset: ds.Dataset = table.to_pyarrow_dataset()
        return dataset

    def _merge_rows(
        self, table: DeltaTable, rows: pa.RecordBatchReader, schema: pa.Schema, had: pa.Schema
    ) -> dict[str, Any]:
        merger = table.merge(
            rows,
            predicate="t.id = s.id",
            source_alias="s",
            target_alias="t",
            merge_schema=True,  # the load's new columns, in the same commit
            writer_properties=_WRITER,
            streamed_exec=True,  # no max_spill_size: the merge's hash join cannot spill, it fails
        )
        # the rows kept are new or changed already (keep_changed), but a table DuckDB cannot
        # read (deletion vectors) is compared here: by the row's fields and the load's typed
        # columns (a column new to the table: set), as DuckDBSink compares
        names = [n for n in schema.names if n != "id"]
        declared = self._info.options.columns if self._info else ()
        changed = " OR ".join(
            f"(t.`{c}` IS DISTINCT FROM s.`{c}`)" if c in had.names else f"(s.`{c}` IS NOT NULL)"
            for c in (*_FIELDS, *(column.name for column in declared))
        )
        updates = {f"`{c}`": f"s.`{c}`" for c in names}
        merger = merger.when_matched_update(updates=updates, predicate=changed)
        return merger.when_not_matched_insert_all().execute()

    @contextlib.contextmanager
    def _one_writer(self) -> Iterator[None]:
        try:
            yield
        except CommitFailedError as exc:
            raise SinkError(
                f"{display_name(self.path)}: another writer committed to the table during this "
                f"load; nothing was committed, run it again ({exc})"
            ) from None

    def _table(self, path: str, schema: pa.Schema) -> DeltaTable:
        """The Delta table at `path`, created if absent."""
        return DeltaTable.create(path, schema, mode="ignore", storage_options=self.storage_options)

    def _append(self, name: str, schema: pa.Schema, data: pa.Table) -> None:
        path = f"{self.path}/{name}"
        self._table(path, schema)
        data = data.cast(schema)
        write_deltalake(
            path, data, mode="append", schema_mode="merge", storage_options=self.storage_options
        )  # merge: a ledger from before `host` and `pid` gains them

    def _add_rejects(self, rejects: pa.Table) -> None:
        """Rejects not kept already: a re-run of a load adds none, as in DuckDB; each keeps the
        load_id that first kept it."""
        path = f"{self.path}/{REJECTS}"
        table = self._table(path, REJECTS_SCHEMA)
        same = " AND ".join(f"t.{c} = s.{c}" for c in _REJECT_KEY)
        merger = table.merge(rejects.cast(REJECTS_SCHEMA), same, source_alias="s", target_alias="t")
        merger.when_not_matched_insert_all().execute()

    def _ledger_row(self, info: LoadInfo) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        row = running_row(self._load_id, display_name(self.path), info, now)
        return {**row, "host": socket.gethostname(), "pid": os.getpid()}

    def _abandon_killed(self) -> None:
        """Mark `abandoned` the ledger rows still `running` whose process, on this host, is
        gone: killed loads'. A load elsewhere cannot be checked: its row stays `running`."""
        ledger = self._table(f"{self.path}/{LEDGER}", LEDGER_SCHEMA)
        if "pid" not in {f.name for f in ledger.schema().fields}:
            return  # a ledger from before: no row says where it ran
        running = ledger.to_pyarrow_table(
            columns=["load_id", "host", "pid"], filters=[("status", "=", "running")]
        )
        host = socket.gethostname()
        killed = [
            r["load_id"]
            for r in running.to_pylist()
            if r["host"] == host and r["pid"] and not alive(r["pid"]) and r["load_id"].isalnum()
        ]
        if not killed:
            return
        now = datetime.now(timezone.utc)
        error = "the loading process ended without finishing (killed?); noticed at "
        values: dict[str, Any] = {
            "status": "abandoned",
            "finished_at": now,
            "error": error + f"{now:%Y-%m-%d %H:%M:%S} UTC",
        }
        ids = ", ".join(f"'{load_id}'" for load_id in killed)  # uuid hex: nothing to quote
        with contextlib.suppress(DeltaError, OSError):  # tidying only: the load goes on
            ledger.update(new_values=values, predicate=f"status = 'running' AND load_id IN ({ids})")

    def _mark(self, **values: Any) -> None:
        """Set the ledger row's outcome. A failure to record a failure is not raised: the row
        stays `running`, and the table is untouched either way."""
        values["finished_at"] = datetime.now(timezone.utc)
        if "error" in values:
            values["error"] = str(values["error"])[:500]
        values = {k: v for k, v in values.items() if v is not None}
        ledger = DeltaTable(f"{self.path}/{LEDGER}", storage_options=self.storage_options)
        suppress = (DeltaError, OSError) if values["status"] == "failed" else ()
        with contextlib.suppress(*suppress):
            ledger.update(new_values=values, predicate=f"load_id = '{self._load_id}'")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (DeltaError, OSError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise SinkError(f"{display_name(self.path)}: {what}: {reason}") from None

    def _require(self) -> DuckDBStage:
        if self._stage is None:
            raise SinkError("DeltaSink: begin() was not called")
        return self._stage

    def _finish(self) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.close()

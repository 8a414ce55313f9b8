"""IcebergSink: upserts into an Apache Iceberg table with pyiceberg (extra `resultloader[iceberg]`).

`iceberg:CATALOG/NAMESPACE.TABLE`: CATALOG is a pyiceberg catalog (`load_catalog(CATALOG)`:
`.pyiceberg.yaml` or `PYICEBERG_CATALOG__<NAME>__...` variables). Beside the table, in its
namespace, the ledger `_resultloader_loads` and the rejects `TABLE_rejects` are Iceberg tables
too (tables.py). JSON values are stored as their exact text in string columns.

A load stages its rows in an in-process DuckDB (sinks/_stage.py), as the Delta and Postgres
sinks do, so the last `seq` of an id wins and the numbers stay exact. At commit the winners new
or changed go into the table in one snapshot (upsert.py); nothing visible before it, nothing
of a load that fails. Rejects are committed just before it, tagged with the load's id.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.table import Table
from pyiceberg.utils.config import Config

from ..._errors import SinkError
from ..._leftovers import alive
from ..._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from ..._names import check_name
from ...parse import JsonlChunk
from .. import LEDGER, REJECTS_SUFFIX, CommittedLoad, SinkCapabilities, running_row
from .._stage import DuckDBStage
from .files import file_batches
from .tables import (
    LOG_PROPERTIES,
    TABLE_PROPERTIES,
    add_columns,
    arrow_schema,
    existing,
    ledger_schema,
    open_table,
    rejects_schema,
    rows_schema,
)
from .upsert import upsert

_REJECT_KEY = ("_source", "line", "byte_offset", "reason", "raw")
_LOCATION = "iceberg:CATALOG/NAMESPACE.TABLE"


def parse_location(location: str) -> tuple[str, tuple[str, ...]]:
    """`CATALOG/NAMESPACE.TABLE` as (catalog, (namespace..., table)), each name checked."""
    catalog, _, name = location.partition("/")
    parts = tuple(name.split("."))
    if not catalog or len(parts) < 2:
        raise ValueError(f"an Iceberg target is {_LOCATION}, not iceberg:{location}")
    check_name("catalog", catalog)
    for part in parts:
        check_name("table", part)
    if parts[-1] == LEDGER or parts[-1].endswith(REJECTS_SUFFIX):
        raise ValueError(f"invalid table name {parts[-1]!r}: the name of a ledger or rejects table")
    return catalog, parts


class IcebergSink:
    """Upserts rows by `id` into the Iceberg table `namespace.table` of the pyiceberg catalog
    `catalog` (a name to configure the pyiceberg way, or a Catalog), created on first use;
    one snapshot a load."""

    capabilities = SinkCapabilities(keeps_rejects=True, reads_jsonl=True, reads_ledger=True)
    prepare_jsonl = staticmethod(DuckDBStage.prepare_jsonl)

    def __init__(self, catalog: str | Catalog, table: str) -> None:
        name = catalog if isinstance(catalog, str) else catalog.name
        self.catalog_name, self.identifier = parse_location(f"{name}/{table}")
        self._catalog = None if isinstance(catalog, str) else catalog
        self._stage: DuckDBStage | None = None
        self._info: LoadInfo | None = None
        self._load_id = ""

    def __repr__(self) -> str:
        return f"IcebergSink({self.shown!r})"

    @property
    def shown(self) -> str:
        return f"iceberg:{self.catalog_name}/{'.'.join(self.identifier)}"

    @property
    def table_name(self) -> str:
        """The table as the ledger's `target` names it: NAMESPACE.TABLE."""
        return ".".join(self.identifier)

    @classmethod
    def from_target(cls, location: str, table: str) -> IcebergSink:
        """The sink `iceberg:CATALOG/NAMESPACE.TABLE` names; `table` is the default only."""
        if table != "results":  # the default, which `--table` always passes
            raise ValueError(
                f"an Iceberg target names its table: table {table!r} does not apply (write "
                f"{_LOCATION})"
            )
        catalog, parts = parse_location(location)
        return cls(catalog, ".".join(parts))

    # -- the tables ----------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            name = self.catalog_name
            try:
                # the configuration as it is now (pyiceberg's own default reads it at import)
                config = cast(dict[str, Any], Config().get_catalog_config(name) or {})
                self._catalog = load_catalog(name, **config)
            except Exception as exc:  # pyiceberg's own: ValueError, NotInstalledError, ...
                raise SinkError(
                    f"{self.shown}: cannot open the Iceberg catalog {name!r}: "
                    f"{' '.join(str(exc).split())[:200]} (configure it in .pyiceberg.yaml or with"
                    f" PYICEBERG_CATALOG__{name.upper()}__URI and ..._WAREHOUSE)"
                ) from None
        return self._catalog

    def _beside(self, name: str) -> tuple[str, ...]:
        return (*self.identifier[:-1], name)

    def _ledger(self) -> Table:
        return open_table(self.catalog, self._beside(LEDGER), ledger_schema(), LOG_PROPERTIES)

    def _rejects_name(self) -> tuple[str, ...]:
        return self._beside(self.identifier[-1] + REJECTS_SUFFIX)

    # -- the LedgerSink protocol -----------------------------------------------------------------

    def committed_loads(self) -> list[CommittedLoad]:
        with self._errors("cannot read the ledger"):
            if (ledger := existing(self.catalog, self._beside(LEDGER))) is None:
                return []
            where = And(_eq("status", "committed"), _eq("target", self.table_name))
            rows = ledger.scan(where, ("source", "provider", "version")).to_arrow()
        return [CommittedLoad(r["source"], r["provider"], r["version"]) for r in rows.to_pylist()]

    def ledger(self) -> pa.Table | None:
        with self._errors("cannot read the ledger"):
            if (ledger := existing(self.catalog, self._beside(LEDGER))) is None:
                return None
            return ledger.scan().to_arrow()

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        with self._errors("cannot read the table"):
            if (table := existing(self.catalog, self.identifier)) is None:
                return None
            had = {field.name for field in table.schema().fields}
            present = tuple(name for name in names if name in had)
            if not present:
                return pa.table({})
            rows: pa.Table = table.scan(selected_fields=present).to_arrow()
            return rows

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._errors("cannot read the rejects"):
            if (table := existing(self.catalog, self._rejects_name())) is None:
                return []
            columns = ("line", "byte_offset", "reason", "raw")
            found = table.scan(_eq("load_id", load["load_id"]), columns).to_arrow()
        return sorted(found.to_pylist(), key=lambda r: r["line"] or 0)

    # -- the Sink protocol -----------------------------------------------------------------------

    def begin(self, info: LoadInfo) -> None:
        self._info, self._load_id = info, uuid.uuid4().hex
        with self._errors("could not start the load"):
            table = open_table(self.catalog, self.identifier, rows_schema(), TABLE_PROPERTIES)
            add_columns(table, info.options.columns, self.shown)  # a changed type: refused here
            if info.options.on_error == "quarantine":  # made by the first such load, as in DuckDB
                open_table(self.catalog, self._rejects_name(), rejects_schema(), LOG_PROPERTIES)
            ledger = self._ledger()
            self._abandon_killed(ledger)
            row = self._running_row(info)
            ledger.append(pa.Table.from_pylist([row], schema=arrow_schema(ledger)))
        self._stage = DuckDBStage()  # its writer's share reserved at commit (upsert.py)
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

    # -- internals -------------------------------------------------------------------------------

    def _merge(self, stage: DuckDBStage, report: LoadReport) -> CommitResult:
        source = self._info.source if self._info else ""
        now = datetime.now(timezone.utc)
        staged, duplicates, nulls, missing = stage.counts(report)
        statuses, tokens = stage.tally()
        rejects = stage.rejects()
        if rejects.num_rows:
            self._add_rejects(rejects, source, now)
        upserted = 0
        if staged:
            table = self.catalog.load_table(self.identifier)  # as it is now
            properties = {"resultloader.load_id": self._load_id}
            with self._one_writer():
                upserted = upsert(table, stage, source, now, properties, staged - duplicates)
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

    def _add_rejects(self, rejects: pa.Table, source: str, now: datetime) -> None:
        """Rejects not kept already: a re-run of a load adds none, as in DuckDB; each keeps the
        load_id that first kept it."""
        table = open_table(self.catalog, self._rejects_name(), rejects_schema(), LOG_PROPERTIES)
        rows = [{**r, "_source": r["source"] or source} for r in rejects.to_pylist()]
        sources = sorted({r["_source"] for r in rows})
        kept = table.scan(_in("_source", sources), _REJECT_KEY).to_arrow().to_pylist()
        seen = {tuple(r[c] for c in _REJECT_KEY) for r in kept}
        new = [
            {**r, "_loaded_at": now, "load_id": self._load_id}
            for r in rows
            if tuple(r[c] for c in _REJECT_KEY) not in seen
        ]
        if new:
            table.append(pa.Table.from_pylist(new, schema=arrow_schema(table)))

    def _running_row(self, info: LoadInfo) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        row = running_row(self._load_id, self.table_name, info, now)
        return {**row, "host": socket.gethostname(), "pid": os.getpid()}

    def _abandon_killed(self, ledger: Table) -> None:
        """Mark `abandoned` the ledger rows still `running` whose process, on this host, is
        gone: killed loads'. A load elsewhere cannot be checked: its row stays `running`."""
        host = socket.gethostname()
        running = ledger.scan(_eq("status", "running"), ("load_id", "host", "pid")).to_arrow()
        killed = [
            r["load_id"]
            for r in running.to_pylist()
            if r["host"] == host and r["pid"] and not alive(r["pid"])
        ]
        if killed:
            now = datetime.now(timezone.utc)
            error = "the loading process ended without finishing (killed?); noticed at "
            values = {"status": "abandoned", "finished_at": now}
            values["error"] = error + f"{now:%Y-%m-%d %H:%M:%S} UTC"
            with contextlib.suppress(CommitFailedException, ValidationException, OSError):
                _update(ledger, killed, values)  # tidying only: the load goes on

    def _mark(self, **values: Any) -> None:
        """Set the ledger row's outcome. A failure to record a failure is not raised: the row
        stays `running`, and the table is untouched either way."""
        values["finished_at"] = datetime.now(timezone.utc)
        if "error" in values:
            values["error"] = str(values["error"])[:500]
        values = {k: v for k, v in values.items() if v is not None}
        try:
            _update(self._ledger(), [self._load_id], values)
        except Exception as exc:
            if values["status"] != "failed":
                reason = " ".join(str(exc).split())[:300]
                what = "the ledger could not be updated"
                raise SinkError(f"{self.shown}: {what}: {reason}") from None

    @contextlib.contextmanager
    def _one_writer(self) -> Iterator[None]:
        try:
            yield
        except (CommitFailedException, ValidationException):
            raise SinkError(
                f"{self.shown}: another writer committed to the table during this load; "
                "nothing was committed, run it again"
            ) from None

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except SinkError:
            raise
        except Exception as exc:  # pyiceberg's errors share no base class
            if not isinstance(exc, (OSError, ValueError, RuntimeError)) and not type(
                exc
            ).__module__.startswith(("pyiceberg", "sqlalchemy", "pyarrow")):
                raise
            reason = " ".join(str(exc).split())[:300]
            raise SinkError(f"{self.shown}: {what}: {reason}") from None

    def _require(self) -> DuckDBStage:
        if self._stage is None:
            raise SinkError("IcebergSink: begin() was not called")
        return self._stage

    def _finish(self) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.close()


def _update(table: Table, load_ids: list[str], values: Mapping[str, Any]) -> None:
    """Set `values` in the ledger rows of `load_ids`, in one snapshot: the files holding them
    (a load's row is a file of its own, found by the files' load_id bounds) replaced by one
    with the rows updated. (pyiceberg's overwrite with a filter makes two snapshots, slower.)"""
    tasks = list(table.scan(row_filter=_in("load_id", load_ids)).plan_files())
    if not tasks:
        return
    schema = arrow_schema(table)
    old = pa.Table.from_batches([b for t in tasks for b in file_batches(table, t)], schema)
    ids = set(load_ids)
    new = [{**r, **values} if r["load_id"] in ids else r for r in old.to_pylist()]
    transaction = table.transaction()
    with transaction.update_snapshot().overwrite() as snapshot:
        for task in tasks:
            snapshot.delete_data_file(task.file)
        rows = pa.Table.from_pylist(new, schema=schema)
        metadata = transaction.table_metadata
        for data_file in _dataframe_to_data_files(metadata, rows, table.io, snapshot.commit_uuid):
            snapshot.append_data_file(data_file)
    transaction.commit_transaction()


# pyiceberg's predicates are pydantic models whose declared fields mypy takes for their
# constructor's (`EqualTo(term=..., value=...)`), where they take (term, literal) positionally
def _eq(column: str, value: Any) -> BooleanExpression:
    return cast(BooleanExpression, cast(Any, EqualTo)(column, value))


def _in(column: str, values: list[Any]) -> BooleanExpression:
    return cast(BooleanExpression, cast(Any, In)(column, values))

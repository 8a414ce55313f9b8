"""Sinks: where rows land. A sink is any object with begin / write / commit / abort and the
`capabilities` it declares.

What every sink that stores rows guarantees (DuckDBSink, PostgresSink, DeltaSink; tested by one
suite, tests/sinks/test_semantics.py, run against each):

- **Last row wins.** Rows of one id may come more than once, in one load or across loads; the
  row read last (highest `seq`) is the one stored. Duplicates within a load are counted.
- **Unchanged rows are untouched.** A row equal to the stored one (output, metadata, url, extra,
  compared as the engine stores them) is not rewritten: it keeps its `_loaded_at` and
  `_source`, and a re-run of a load changes nothing.
- **Exact numbers.** JSON values keep the numbers the source wrote: integers beyond 64 bits and
  decimals beyond a double's precision keep their value. (Their spelling may change with the
  engine: PostgreSQL's JSONB writes `1e400` out in full, DuckDB's JSON functions `1.00` as `1.0`.)
- **Counts.** `commit` returns how many rows were upserted (new or changed), unchanged, and
  collapsed as duplicates.
- **One load, one transaction.** The rows land whole at commit or not at all: a failure, an
  abort or the process killed mid-load leaves the previous state.
- **A ledger.** Each load leaves a row in `_resultloader_loads` (the columns of
  `LEDGER_COLUMNS`: source, provider, job, counts, `running` -> `committed` or `failed`; a
  killed load's row `abandoned` by the next load), which the sink reads back (`LedgerSink`).
- **Rejects.** Under `on_error="quarantine"` a batch's `rejects` are kept (source, line, byte
  offset, reason, raw text) next to the table: `<table>_rejects`, made by the first load with
  quarantine (a load without it makes none), and a re-run keeps none twice.
- **Names are checked** before anything is run, and credentials never reach a repr, an error,
  the ledger or `_source`. Where the engine has schemas (DuckDB, PostgreSQL), `SCHEMA.TABLE`
  puts the table, its rejects and its ledger in that schema, made if missing.

`resultloader.testing.SinkContract` states these as tests, for any sink. Which sink a target
string means is decided by the sinks registered by scheme (`registry.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import pyarrow as pa

from .._model import SEQ_BITS, BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from .._names import check_name
from ..parse import JsonlChunk


@dataclass(frozen=True)
class SinkCapabilities:
    """What a sink can do beyond the protocol's four methods; the pipeline reads nothing else.

    `keeps_rejects`: it stores a batch's rejects, so `on_error="quarantine"` may be used.
    `reads_jsonl`: it is a JsonlChunkSink, reading raw JSONL chunks itself.
    `reads_ledger`: it is a LedgerSink, telling which loads its ledger holds as committed (so
    that a re-run of many sources or jobs skips them).
    """

    keeps_rejects: bool = False
    reads_jsonl: bool = False
    reads_ledger: bool = False


LEDGER = "_resultloader_loads"
Kind = Literal["text", "integer", "timestamp"]
# The ledger's columns, the one declaration every sink's ledger (its DDL or schema) is made
# from, in this order; a sink may add its own after them (Delta: the load's host and pid).
LEDGER_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("load_id", "text"),
    ("target", "text"),  # the table, as the sink names it (schema-qualified where given)
    ("source", "text"),
    ("provider", "text"),
    ("job_id", "text"),
    ("job_status", "text"),
    ("status", "text"),  # running, committed, failed, abandoned
    ("rows_read", "integer"),
    ("rows_upserted", "integer"),
    ("rows_unchanged", "integer"),
    ("duplicates", "integer"),
    ("bad_rows", "integer"),
    ("bytes", "integer"),
    ("started_at", "timestamp"),  # UTC
    ("finished_at", "timestamp"),
    ("error", "text"),
    ("version", "text"),  # the source's, for load_many's skip of unchanged sources
    ("columns", "text"),  # the typed columns the load wrote, `name type, ...` (none: NULL)
)
REJECTS_SUFFIX = "_rejects"  # a table's rejects: <table>_rejects
_ARROW = {"text": pa.string(), "integer": pa.int64(), "timestamp": pa.timestamp("us", "UTC")}


def ledger_schema() -> pa.Schema:
    """The ledger's columns as Arrow, times in UTC."""
    return pa.schema([(name, _ARROW[kind]) for name, kind in LEDGER_COLUMNS])


def split_table(table: str) -> tuple[str | None, str]:
    """A table's name, schema-qualified or not (`staging.results`), as (schema, table), each
    a plain identifier (checked); no schema: None. A sink quotes both."""
    parts = table.split(".") if isinstance(table, str) else [table]
    try:
        if len(parts) > 2:
            raise ValueError("at most one dot")
        for part in parts:
            check_name("table", part)
    except ValueError:
        raise ValueError(
            f"invalid table name {table!r}: TABLE or SCHEMA.TABLE, each of letters, digits and "
            "underscores, starting with a letter or underscore"
        ) from None
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


class CommittedLoad(NamedTuple):
    """A committed load in a ledger: its source, provider, and the source's version (size and
    ETag or mtime; for an atomic load of many sources a JSON object of each one's), if known."""

    source: str
    provider: str | None
    version: str | None


def running_row(load_id: str, target: str, info: LoadInfo, now: datetime) -> dict[str, Any]:
    """A load's ledger row as it begins (`running`): the same columns in every sink's ledger."""
    return {
        "load_id": load_id,
        "target": target,
        "source": info.source,
        "provider": info.provider,
        "job_id": info.job_id,
        "status": "running",
        "started_at": now,
        "version": info.version,
        "columns": ", ".join(c.declaration for c in info.options.columns) or None,
    }


# A row's `_source`, in DuckDB's SQL over the stage `s`: the load's source, or in an atomic load
# of many sources the one the row came from (LoadInfo.sources, by the row's seq); `row_sources`
# gives the parameters. (A lookup of an empty list costs nothing measurable.)
ROW_SOURCE = f"coalesce(list_extract($sources::VARCHAR[], (s.seq >> {SEQ_BITS}) + 1), $source)"


def row_sources(info: LoadInfo | None) -> dict[str, Any]:
    """The parameters of ROW_SOURCE for a load."""
    return {"source": info.source if info else "", "sources": list(info.sources if info else ())}


@runtime_checkable
class Sink(Protocol):
    """One load is begin, then write for each batch, then commit (or abort on any failure).

    Rows of one id may come more than once: the last one written wins. `commit` gets the
    load's report so far (rows read, bad rows, bytes) for sinks that record loads. Under
    `on_error="quarantine"` a batch's `rejects` are for the sink to keep; a sink that cannot
    keep them declares `keeps_rejects=False` and quarantine is refused up front.
    """

    capabilities: SinkCapabilities

    def begin(self, info: LoadInfo) -> None: ...

    def write(self, batch: RowBatch) -> None: ...

    def commit(self, report: LoadReport) -> CommitResult | None: ...

    def abort(self, error: str | None = None) -> None: ...


@runtime_checkable
class JsonlChunkSink(Sink, Protocol):
    """A sink that can read raw JSONL itself, faster than Python can parse it
    (`capabilities.reads_jsonl`).

    `prepare_jsonl` does the sink's stateless work on a chunk ahead of time, in the reading
    thread. `write_jsonl` returns the chunk's stats, or None to decline it; declined chunks are
    parsed in Python and come back through `write`. A sink may leave the stats' null counts at
    0 and return the load's totals in its CommitResult instead.
    """

    def prepare_jsonl(self, chunk: JsonlChunk) -> JsonlChunk: ...

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None: ...


@runtime_checkable
class LedgerSink(Sink, Protocol):
    """A sink whose ledger can be read back (`capabilities.reads_ledger`): by a re-run of many
    sources or jobs (`committed_loads`), by `resultloader history` (`ledger`, `rejects`) and by
    `resultloader failed` (`read_columns`)."""

    def committed_loads(self) -> list[CommittedLoad]:
        """The committed loads into this sink's table; none when there is no ledger yet."""
        ...

    def ledger(self) -> pa.Table | None:
        """Every load its ledger holds, of every table (and schema) beside this one: the
        `LEDGER_COLUMNS` a ledger of its age has, times in UTC. None when there is no ledger."""
        ...

    def rejects(self, load: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rejects `load` (a row of `ledger()`) kept: `line`, `byte_offset`, `reason` and
        `raw`, by line; none when its table has no rejects table."""
        ...

    def read_columns(self, names: Sequence[str]) -> pa.Table | None:
        """Every row of this sink's table, the columns among `names` that it has (by name, as
        given), for `resultloader failed`; None when there is no such table."""
        ...

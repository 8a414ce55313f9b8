"""Sinks: where rows land. A sink is any object with begin / write / commit / abort."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._model import BatchStats, CommitResult, LoadInfo, LoadReport, RowBatch
from ..parse import JsonlChunk


@runtime_checkable
class Sink(Protocol):
    """One load is begin, then write for each batch, then commit (or abort on any failure).

    Rows of one id may come more than once: the last one written wins. `commit` gets the
    load's report so far (rows read, bad rows, bytes) for sinks that record loads. Under
    `on_error="quarantine"` a batch's `rejects` are for the sink to keep; a sink that cannot
    keep them sets `stores_rejects = False` and quarantine is refused up front.
    """

    def begin(self, info: LoadInfo) -> None: ...

    def write(self, batch: RowBatch) -> None: ...

    def commit(self, report: LoadReport) -> CommitResult | None: ...

    def abort(self, error: str | None = None) -> None: ...


@runtime_checkable
class JsonlChunkSink(Sink, Protocol):
    """A sink that can read raw JSONL itself, faster than Python can parse it.

    `write_jsonl` returns the chunk's stats, or None to decline it; declined chunks are parsed
    in Python and come back through `write`. A sink may leave the stats' null counts at 0 and
    return the load's totals in its CommitResult instead.
    """

    def write_jsonl(self, chunk: JsonlChunk) -> BatchStats | None: ...

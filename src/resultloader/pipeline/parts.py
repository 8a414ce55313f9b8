"""Parts: sources read and parsed ahead of the one writer, then replayed into the sink.

A part is a source loaded by the ordinary pipeline into a DuckDB file of its own (rows deduped
by line, rejects kept), made in a thread here or as Parquet on a Dask worker (_dask.py). The
writer replays parts into the sink in the order given: one part a load, or all in one atomic
load where a part's rows carry a higher `seq` than those of the parts before it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import duckdb

from .._model import SEQ_BITS, LoadInfo, LoadOptions, LoadReport, Reject, RowBatch
from ..providers.base import with_provider
from ..sinks import Sink
from ..sinks.duckdb.sink import DuckDBSink
from ..sources.download import HttpPolicy
from ..sources.expand import Source
from .load import keep_report, load
from .part_files import fetch  # a part on S3 is read from a local copy


@dataclass
class Part:
    """A source read and parsed: its rows (and rejects) in a DuckDB file with tables `part`
    and `part_rejects`, or in Parquet files (`path` and its `-rejects` twin), and its report."""

    source: Source
    path: str
    report: LoadReport
    parquet: bool = False


def stage_part(
    source: Source,
    options: LoadOptions,
    http: HttpPolicy | None,
    directory: str,
    index: int,
    workers: int = 1,
) -> Part:
    """Read and parse one source into a DuckDB file of its own, by the ordinary pipeline, as
    one of `workers` parts staged at once beside the writer: its share of the budget."""
    path = os.path.join(directory, f"part-{index:06d}.duckdb")
    # quarantine: the part keeps the rejects for the writer; its memory as a DuckDBSink's
    sink = DuckDBSink(path, "part")
    sink.share = (workers + 1, workers) if workers > 1 else (1, 1)
    part = load(source.name, sink, options=options, http=http)
    return Part(source, path, part)


def writer_share(sink: Sink, workers: int) -> Sink:
    """The writer as one of the `workers + 1` DuckDB instances that share the budget (its
    memory; the merge keeps every thread). A DuckDBSink is copied: the caller's is unchanged."""
    if not isinstance(sink, DuckDBSink) or workers <= 1:
        return sink
    writer = copy.copy(sink)
    writer.share = (workers + 1, 1)
    return writer


@contextlib.contextmanager
def thread_parts(
    sources: list[Source], options: LoadOptions, http: HttpPolicy | None, workers: int
) -> Iterator[Iterator[tuple[Source, Future[Part]]]]:
    """The sources' parts in order, at most `workers` staged ahead of the writer; the stage
    directory is removed at the end, whatever happens."""
    directory = tempfile.mkdtemp(prefix="resultloader-parts-")
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resultloader-part")

    def in_order() -> Iterator[tuple[Source, Future[Part]]]:
        ahead: deque[tuple[Source, Future[Part]]] = deque()
        pending = iter(enumerate(sources))
        while True:
            while len(ahead) < workers:
                nxt = next(pending, None)
                if nxt is None:
                    break
                i, source = nxt
                staged = pool.submit(stage_part, source, options, http, directory, i, workers)
                ahead.append((source, staged))
            if not ahead:
                return
            yield ahead.popleft()

    try:
        yield in_order()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(directory, ignore_errors=True)


class Staged(Protocol):
    def result(self) -> Part: ...


Parts = contextlib.AbstractContextManager[Iterator[tuple[Source, Staged]]]


def discard(part: Part) -> None:
    """A local part once merged (a stage on S3 is removed whole at the end)."""
    if "://" not in part.path:
        for path in (part.path, rejects_path(part.path)) if part.parquet else (part.path,):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def replay(parts: list[Part], sink: Sink, info: LoadInfo) -> LoadReport:
    """One load into `sink` of the parts' rows (and rejects), part by part in order."""
    started = time.perf_counter()
    report = _sum_reports(info.source, [p.report for p in parts])
    # the provider's typed columns, as each part's own load computed (and checked) them
    info = dataclasses.replace(info, options=with_provider(info.options))
    sink.begin(info)
    try:
        for place, part in enumerate(parts):
            _write_part(sink, part, place << SEQ_BITS, info.options)
        result = sink.commit(report)
    except BaseException as exc:
        sink.abort(str(exc) or type(exc).__name__)
        keep_report(exc, report)
        raise
    if result is not None:
        report.rows_upserted, report.rows_unchanged = result.upserted, result.unchanged
        report.statuses, report.tokens = result.statuses, result.tokens
        if result.duplicates is not None:  # those within each part were collapsed there
            report.duplicates = (report.duplicates or 0) + result.duplicates
    report.seconds += time.perf_counter() - started
    return report


def rejects_path(parquet_path: str) -> str:
    return parquet_path.removesuffix(".parquet") + "-rejects.parquet"


def _write_part(sink: Sink, part: Part, base: int, options: LoadOptions) -> None:
    """The part's rows to the sink with `seq` from `base` on, then its rejects."""
    fetched = tempfile.mkdtemp(prefix="resultloader-fetch-") if "://" in part.path else ""
    try:
        path = fetch(part.path, fetched) if part.parquet else part.path
        if isinstance(sink, DuckDBSink):  # straight from the file, in SQL
            sink.write_part(path, part.parquet, base)
        else:
            _write_rows(sink, path, part.parquet, base, options)
        if options.on_error == "quarantine":
            _write_rejects(sink, part, fetched)
    finally:
        if fetched:
            shutil.rmtree(fetched, ignore_errors=True)


def _part_connection(path: str, parquet: bool) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A connection that reads the part, and the relation of its rows."""
    if not parquet:
        return duckdb.connect(path, read_only=True), "part"
    # one thread, order not kept: a streamed scan, whatever the cores (8 threads' buffers
    # would outgrow a small limit); ids are unique within a part, so order is free
    con = duckdb.connect(
        config={"memory_limit": "256MB", "threads": 1, "preserve_insertion_order": False}
    )
    return con, f"read_parquet('{_quoted(path)}')"


def _write_rows(sink: Sink, path: str, parquet: bool, base: int, options: LoadOptions) -> None:
    con, rows_from = _part_connection(path, parquet)
    try:
        relation = con.sql(
            f"SELECT id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR FROM {rows_from}"
        )
        reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        seq = base
        for chunk in reader(options.batch_rows):  # to_arrow_reader: DuckDB 2.0's name
            ids, outputs, metadata, urls, extras = (c.to_pylist() for c in chunk.columns)
            sink.write(
                RowBatch(ids, outputs, metadata, urls, extras, list(range(seq, seq + len(ids))))
            )
            seq += len(ids)
    finally:
        con.close()


def _write_rejects(sink: Sink, part: Part, fetched: str) -> None:
    if part.parquet:
        con, rejects_from = _part_connection(":memory:", True)
        rejects_from = f"read_parquet('{_quoted(fetch(rejects_path(part.path), fetched))}')"
    else:
        con, rejects_from = duckdb.connect(part.path, read_only=True), "part_rejects"
    try:
        kept = con.execute(
            f"SELECT line, byte_offset, reason, raw FROM {rejects_from} ORDER BY line"
        )
        source = part.source.shown  # in an atomic load, the reject's own file
        kept_rejects = [Reject(n, at, why, raw, source) for n, at, why, raw in kept.fetchall()]
        sink.write(RowBatch(rejects=kept_rejects))
    finally:
        con.close()


def _quoted(path: str) -> str:
    return path.replace("'", "''")


def _sum_reports(source: str, reports: list[LoadReport]) -> LoadReport:
    """The parts' counts as one report (for one part, a copy of its own)."""
    if len(reports) == 1:
        return dataclasses.replace(reports[0], source=source)
    total = LoadReport(source, duplicates=0)
    for r in reports:
        total.rows_read += r.rows_read
        total.null_outputs += r.null_outputs
        total.missing_metadata += r.missing_metadata
        total.duplicates = (total.duplicates or 0) + (r.duplicates or 0)
        total.bad_rows += r.bad_rows
        total.bytes_read += r.bytes_read
        total.data_bytes += r.data_bytes
        total.seconds += r.seconds
    return total

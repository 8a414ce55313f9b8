"""`load_many`: many sources into one sink, each its own load, or all in one with `atomic`.

One source at a time, each is an ordinary `load` (its own transaction and ledger row). With
`workers > 1` or `atomic`, sources are staged first: each is loaded by the same pipeline into a
DuckDB file of its own (a part: rows deduped by line, rejects kept), N at once in threads, while
the one writer replays the parts into the sink in the order given. Last wins across sources by
that order: a part is committed after the parts before it, or, in one atomic load, its rows
carry a higher `seq` than theirs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import duckdb
import orjson

from ._errors import ResultLoaderError
from ._expand import Source, expand
from ._model import LoadInfo, LoadOptions, LoadReport, Reject, RowBatch
from ._pipeline import SinkLike, _one_name, as_sink, keep_report, load, run_load
from ._sources import open_source
from .sinks import Sink
from .sinks._duckdb_sql import LEDGER
from .sinks.duckdb import DuckDBSink

Outcome = Literal["loaded", "skipped", "failed"]
_SEQ_BITS = 40  # an atomic load's seq: the source's place above, its row's below


@dataclass
class SourceResult:
    """What became of one source: loaded (with its report), skipped as unchanged, or failed."""

    source: str
    outcome: Outcome
    report: LoadReport | None = None
    error: str | None = None
    part_of: str | None = None  # the atomic load that committed it, with the others

    def to_dict(self) -> dict[str, Any]:
        counts = self.report.to_dict() if self.report else {"source": self.source}
        return {**counts, "outcome": self.outcome, "error": self.error, "part_of": self.part_of}


Each = Callable[[SourceResult], None]


def load_many(
    sources: list[str] | str,
    sink: SinkLike = None,
    options: LoadOptions | None = None,
    *,
    workers: int = 1,
    atomic: bool = False,
    table: str | None = None,
    each: Each | None = None,
    engine: str | None = None,
    stage: str | None = None,
) -> list[SourceResult]:
    """Load every source (paths, URLs, globs with `*`/`**`, local or s3://) into `sink`.

    Each source is its own load, committed in the order given (the last row of an id wins);
    one already committed unchanged (same size and ETag or mtime in the ledger) is skipped,
    unless a source before it was loaded in this run. `atomic=True` commits all in one load.
    `workers` sources are read and parsed at once, one writer. A failing source stops the run
    with its error (which carries the results so far as `.resultloader_results`); the sources
    committed before it stay committed (nothing, with `atomic`). `each` sees every result.

    `engine="dask"` reads and parses on a local Dask cluster of `workers` processes,
    `engine="dask://HOST:PORT"` on an existing one; parts go to Parquet files in `stage` (a
    directory the workers and this process share, or s3://...; default a temp dir), merged
    here with the same semantics, then removed.
    """
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    options = options or LoadOptions()
    target = as_sink(sink, table)
    if options.on_error == "quarantine" and not _keeps_rejects(target):
        raise ResultLoaderError(
            f"{type(target).__name__} cannot keep rejected rows: use on_error='skip' or a sink "
            "that stores rejects"
        )
    todo, results = _skip_unchanged(
        expand([sources] if isinstance(sources, str) else sources), target
    )
    for result in results:
        if each:
            each(result)
    report = _Reporter(results, each)
    try:
        if engine is None and workers == 1 and not atomic:
            for source in todo:
                _load_one(source, target, options, report)
        else:
            parts = _engine_parts(todo, options, workers, engine, stage)
            if atomic:
                _load_atomic(todo, target, options, parts, report)
            else:
                _load_staged(target, options, parts, report)
    except BaseException as exc:
        with contextlib.suppress(AttributeError, TypeError):
            exc.resultloader_results = results  # type: ignore[attr-defined]
        raise
    return results


class _Reporter:
    """Collects the results and shows each to the caller as it comes."""

    def __init__(self, results: list[SourceResult], each: Each | None) -> None:
        self.results, self.each = results, each

    def __call__(self, result: SourceResult) -> None:
        self.results.append(result)
        if self.each:
            self.each(result)

    def failed(self, source: str, exc: BaseException) -> None:
        report = getattr(exc, "resultloader_report", None)
        self(SourceResult(source, "failed", report, str(exc) or type(exc).__name__))


def _keeps_rejects(sink: Sink) -> bool:
    capabilities = getattr(sink, "capabilities", None)
    if capabilities is not None:
        return bool(capabilities.keeps_rejects)
    return bool(getattr(sink, "stores_rejects", False))


def _skip_unchanged(sources: list[Source], sink: Sink) -> tuple[list[Source], list[SourceResult]]:
    """The sources to load and the skipped ones. A source is skipped only while every source
    before it was skipped too: once one is loaded, those after it are loaded again so that
    they still win over it."""
    committed = committed_versions(sink)
    for i, source in enumerate(sources):
        if source.version is None or (source.name, source.version) not in committed:
            skipped = sources[:i]
            return sources[i:], [SourceResult(s.name, "skipped") for s in skipped]
    return [], [SourceResult(s.name, "skipped") for s in sources]


def committed_versions(sink: Sink) -> set[tuple[str, str]]:
    """(source, version) of every committed load into the sink's table, from its ledger. Only
    DuckDBSink has one that records versions: other sinks skip nothing."""
    if not isinstance(sink, DuckDBSink):
        return set()
    database = sink.database
    if not isinstance(database, duckdb.DuckDBPyConnection):
        if not os.path.exists(database):
            return set()
        database = duckdb.connect(os.fspath(database), read_only=True)
    try:
        has_column = database.execute(
            "SELECT count(*) FROM duckdb_columns()"
            " WHERE table_name = ? AND column_name = 'version'",
            [LEDGER],
        ).fetchone()
        if not has_column or not has_column[0]:
            return set()
        rows = database.execute(
            f"SELECT source, version FROM {LEDGER} WHERE target = ? AND status = 'committed'"
            " AND version IS NOT NULL",
            [sink.table],
        ).fetchall()
    finally:
        if database is not sink.database:
            database.close()
    found: set[tuple[str, str]] = set()
    for source, version in rows:
        if version.startswith("{"):  # an atomic load: every source's version
            found.update(orjson.loads(version).items())
        else:
            found.add((source, version))
    return found


def _engine_parts(
    sources: list[Source], options: LoadOptions, workers: int, engine: str | None, stage: str | None
) -> Parts:
    """Where the parts are made: threads here, or the workers of a Dask cluster."""
    if engine is None or engine == "threads":
        if stage is not None:
            raise ValueError("stage= is for engine='dask': threads stage in a temp dir")
        return _parts(sources, options, workers)
    from ._dask import dask_parts

    return dask_parts(sources, options, workers, engine, stage)


def _load_one(source: Source, sink: Sink, options: LoadOptions, report: _Reporter) -> None:
    try:
        opened = open_source(_one_name(source.name), max_bytes=options.max_bytes)
        info = LoadInfo(opened.name, options, version=source.version)
        report(SourceResult(source.name, "loaded", run_load(opened, sink, options, info)))
    except BaseException as exc:
        report.failed(source.name, exc)
        raise


# -- staged: parts read in threads, replayed by one writer --------------------------------------


@dataclass
class Part:
    """A source read and parsed: its rows (and rejects) in a DuckDB file with tables `part`
    and `part_rejects`, or in Parquet files (`path` and its `-rejects` twin), and its report."""

    source: Source
    path: str
    report: LoadReport
    parquet: bool = False


def stage_part(source: Source, options: LoadOptions, directory: str, index: int) -> Part:
    """Read and parse one source into a DuckDB file of its own, by the ordinary pipeline."""
    path = os.path.join(directory, f"part-{index:06d}.duckdb")
    # quarantine: the part keeps the rejects for the writer; its memory as a DuckDBSink's
    part = load(source.name, DuckDBSink(path, "part"), options=options)
    return Part(source, path, part)


@contextlib.contextmanager
def _parts(
    sources: list[Source], options: LoadOptions, workers: int
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
                ahead.append((source, pool.submit(stage_part, source, options, directory, i)))
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


def _load_staged(sink: Sink, options: LoadOptions, parts: Parts, report: _Reporter) -> None:
    with parts as staged:
        for source, future in staged:
            try:
                part = future.result()
                info = LoadInfo(source.name, options, version=source.version)
                report(SourceResult(source.name, "loaded", _replay([part], sink, info)))
                _discard(part)
            except BaseException as exc:
                report.failed(source.name, exc)
                raise


def _discard(part: Part) -> None:
    """A local part once merged (a stage on S3 is removed whole at the end)."""
    if "://" not in part.path:
        for path in (part.path, rejects_path(part.path)) if part.parquet else (part.path,):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _load_atomic(
    sources: list[Source], sink: Sink, options: LoadOptions, parts: Parts, report: _Reporter
) -> None:
    """Every source staged, then all replayed in one load; a failure commits nothing."""
    if not sources:
        return
    staged: list[Part] = []
    with parts as futures:
        for source, future in futures:
            try:
                staged.append(future.result())
            except BaseException as exc:
                report.failed(source.name, exc)
                raise
        first = sources[0].name
        label = first if len(sources) == 1 else f"{first} (+{len(sources) - 1} more, atomic)"
        versions = {s.name: s.version for s in sources if s.version is not None}
        info = LoadInfo(label, options, version=orjson.dumps(versions).decode())
        try:
            total = _replay(staged, sink, info)
        except BaseException as exc:
            report.failed(label, exc)
            raise
    for part in staged:
        part.report.rows_upserted = part.report.rows_unchanged = None  # known for all only
        report(SourceResult(part.source.name, "loaded", part.report, part_of=label))
    report(SourceResult(label, "loaded", total))


def _replay(parts: list[Part], sink: Sink, info: LoadInfo) -> LoadReport:
    """One load into `sink` of the parts' rows (and rejects), part by part in order."""
    started = time.perf_counter()
    report = _sum_reports(info.source, [p.report for p in parts])
    sink.begin(info)
    try:
        for place, part in enumerate(parts):
            _write_part(sink, part, place << _SEQ_BITS, info.options)
        result = sink.commit(report)
    except BaseException as exc:
        sink.abort(str(exc) or type(exc).__name__)
        keep_report(exc, report)
        raise
    if result is not None:
        report.rows_upserted, report.rows_unchanged = result.upserted, result.unchanged
        if result.duplicates is not None:  # those within each part were collapsed there
            report.duplicates = (report.duplicates or 0) + result.duplicates
    report.seconds += time.perf_counter() - started
    return report


def rejects_path(parquet_path: str) -> str:
    return parquet_path.removesuffix(".parquet") + "-rejects.parquet"


def _write_part(sink: Sink, part: Part, base: int, options: LoadOptions) -> None:
    """The part's rows to the sink with `seq` from `base` on, then its rejects."""
    rows_from, rejects_from = "part", "part_rejects"
    fetched = tempfile.mkdtemp(prefix="resultloader-fetch-") if "://" in part.path else ""
    if part.parquet:
        from ._dask import fetch  # a part on S3 is read from a local copy

        con = duckdb.connect(config={"memory_limit": "64MB"})
        rows_from = f"read_parquet('{_quoted(fetch(part.path, fetched))}')"
        if options.on_error == "quarantine":
            rejects = fetch(rejects_path(part.path), fetched)
            rejects_from = f"read_parquet('{_quoted(rejects)}')"
    else:
        con = duckdb.connect(part.path, read_only=True)
    try:
        relation = con.sql(
            f"SELECT id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR FROM {rows_from}"
        )
        reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        rows = reader(options.batch_rows)  # to_arrow_reader: DuckDB 2.0's name
        seq = base
        for chunk in rows:
            ids, outputs, metadata, urls, extras = (c.to_pylist() for c in chunk.columns)
            sink.write(
                RowBatch(ids, outputs, metadata, urls, extras, list(range(seq, seq + len(ids))))
            )
            seq += len(ids)
        if options.on_error == "quarantine":
            kept = con.execute(
                f"SELECT line, byte_offset, reason, raw FROM {rejects_from} ORDER BY line"
            )
            sink.write(RowBatch(rejects=[Reject(*row) for row in kept.fetchall()]))
    finally:
        con.close()
        if fetched:
            shutil.rmtree(fetched, ignore_errors=True)


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

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from .._errors import ResultLoaderError
from .._model import LoadInfo, LoadOptions, LoadReport
from ..sinks import CommittedLoad, LedgerSink, Sink
from ..sources import refuse_databases
from ..sources.download import HttpPolicy
from ..sources.expand import Source, expand
from .load import SinkLike, as_sink, load_source, record_failure
from .parts import Part, Parts, discard, replay, thread_parts, writer_share

Outcome = Literal["loaded", "skipped", "failed"]


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
    parts_dir: str | None = None,
    http: HttpPolicy | None = None,
) -> list[SourceResult]:
    """Load every source (paths, URLs, globs with `*`/`**`, local or s3://) into `sink`.

    Each source is its own load, committed in the order given (the last row of an id wins);
    one already committed unchanged (same size and ETag or mtime in the ledger) is skipped,
    unless a source before it was loaded in this run. `atomic=True` commits all in one load.
    `workers` sources are read and parsed at once, one writer. A failing source stops the run
    with its error (which carries the results so far as `.resultloader_results`); the sources
    committed before it stay committed (nothing, with `atomic`). `each` sees every result.

    `engine="dask"` reads and parses on a local Dask cluster of `workers` processes,
    `engine="dask://HOST:PORT"` on an existing one; parts go to Parquet files in `parts_dir` (a
    directory the workers and this process share, or s3://...; default a temp dir), merged
    here with the same semantics, then removed. `http` bounds each http(s) download.
    """
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    if parts_dir is not None and not (engine or "").startswith("dask"):
        raise ValueError("parts_dir is for the Dask engine: threads keep parts in a temp dir")
    options = options or LoadOptions()
    target = as_sink(sink, table)
    if options.on_error == "quarantine" and not target.capabilities.keeps_rejects:
        raise ResultLoaderError(
            f"{type(target).__name__} cannot keep rejected rows: use on_error='skip' or a sink "
            "that stores rejects"
        )
    expanded = expand([sources] if isinstance(sources, str) else sources)
    refuse_databases([source.name for source in expanded])  # before any is loaded
    todo, results = _skip_unchanged(expanded, target)
    for result in results:
        if each:
            each(result)
    report = _Reporter(results, each)
    try:
        if engine is None and workers == 1 and not atomic:
            for source in todo:
                _load_one(source, target, options, http, report)
        else:
            parts = _engine_parts(todo, options, http, workers, engine, parts_dir)
            writer = writer_share(target, workers)  # the parts and the writer share the budget
            if atomic:
                _load_atomic(todo, writer, options, parts, report)
            else:
                _load_staged(writer, options, parts, report)
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


def _skip_unchanged(sources: list[Source], sink: Sink) -> tuple[list[Source], list[SourceResult]]:
    """The sources to load and the skipped ones. A source is skipped only while every source
    before it was skipped too: once one is loaded, those after it are loaded again so that
    they still win over it."""
    committed = committed_versions(sink)
    for i, source in enumerate(sources):
        if source.version is None or (source.shown, source.version) not in committed:
            skipped = sources[:i]
            return sources[i:], [SourceResult(s.shown, "skipped") for s in skipped]
    return [], [SourceResult(s.shown, "skipped") for s in sources]


def committed_versions(sink: Sink) -> set[tuple[str, str]]:
    """(source, version) of every committed load into the sink's table, from its ledger."""
    found: set[tuple[str, str]] = set()
    for load in committed_loads(sink):
        if load.version is None:
            continue
        if load.version.startswith("{"):  # an atomic load: every source's version
            found.update(orjson.loads(load.version).items())
        else:
            found.add((load.source, load.version))
    return found


def committed_loads(sink: Sink) -> list[CommittedLoad]:
    """The committed loads in the sink's ledger; none for a sink without one (a function)."""
    if not sink.capabilities.reads_ledger:
        return []
    return cast(LedgerSink, sink).committed_loads()


def _engine_parts(
    sources: list[Source],
    options: LoadOptions,
    http: HttpPolicy | None,
    workers: int,
    engine: str | None,
    parts_dir: str | None,
) -> Parts:
    """Where the parts are made: threads here, or the workers of a Dask cluster."""
    if engine is None or engine == "threads":
        return thread_parts(sources, options, http, workers)
    from .dask import dask_parts

    return dask_parts(sources, options, http, workers, engine, parts_dir)


def _load_one(
    source: Source, sink: Sink, options: LoadOptions, http: HttpPolicy | None, report: _Reporter
) -> None:
    try:
        loaded = load_source(source.name, sink, options, http, version=source.version)
        report(SourceResult(source.shown, "loaded", loaded))
    except BaseException as exc:
        report.failed(source.shown, exc)
        raise


# -- staged: parts read in threads, replayed by one writer --------------------------------------


def _load_staged(sink: Sink, options: LoadOptions, parts: Parts, report: _Reporter) -> None:
    with parts as staged:
        for source, future in staged:
            info = LoadInfo(source.shown, options, version=source.version)
            try:
                part = future.result()
            except Exception as exc:
                record_failure(sink, info, exc)
                report.failed(source.shown, exc)
                raise
            try:
                report(SourceResult(source.shown, "loaded", replay([part], sink, info)))
                discard(part)
            except BaseException as exc:
                report.failed(source.shown, exc)
                raise


def _load_atomic(
    sources: list[Source], sink: Sink, options: LoadOptions, parts: Parts, report: _Reporter
) -> None:
    """Every source staged, then all replayed in one load; a failure commits nothing."""
    if not sources:
        return
    staged: list[Part] = []
    first = sources[0].shown
    label = first if len(sources) == 1 else f"{first} (+{len(sources) - 1} more, atomic)"
    versions = {s.shown: s.version for s in sources if s.version is not None}
    info = LoadInfo(label, options, version=orjson.dumps(versions).decode())
    with parts as futures:
        for source, future in futures:
            try:
                staged.append(future.result())
            except BaseException as exc:
                if isinstance(exc, Exception):  # the load's ledger row, naming the source
                    record_failure(sink, info, exc)
                report.failed(source.shown, exc)
                raise
        try:  # each row names its own source; the ledger row, the set
            every = tuple(part.source.shown for part in staged)
            total = replay(staged, sink, dataclasses.replace(info, sources=every))
        except BaseException as exc:
            report.failed(label, exc)
            raise
    for part in staged:
        part.report.rows_upserted = part.report.rows_unchanged = None  # known for all only
        report(SourceResult(part.source.shown, "loaded", part.report, part_of=label))
    report(SourceResult(label, "loaded", total))

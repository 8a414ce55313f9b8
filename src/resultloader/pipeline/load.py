"""`load`: the one place that knows the whole flow, source -> parse -> sink."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import orjson
from duckdb import DuckDBPyConnection

from .._errors import DownloadError, ParseError, ResultLoaderError, Terminated
from .._model import (
    BatchStats,
    Format,
    LoadInfo,
    LoadOptions,
    LoadReport,
    OnError,
    RowBatch,
    one_way_in,
)
from .._redact import display_name
from ..parse import JsonlChunk, detect_format, iter_batches, parse_chunk
from ..parse._rows import decode_exact
from ..providers.base import looks_like, with_provider
from ..sinks import JsonlChunkSink, Sink
from ..sinks.callable import sink_from_callable
from ..sinks.duckdb import DuckDBSink
from ..sinks.registry import sink_for
from ..sources import (
    _REMOTE_SCHEMES,
    Opened,
    name_hint,
    open_source,
    refuse_databases,
    source_name,
)
from ..sources.download import HttpPolicy
from .prefetch import prefetch

Progress = Callable[[int, "int | None", int], None]  # (bytes read, total bytes, rows read)
SinkLike = Sink | Callable[..., Any] | str | os.PathLike[str] | DuckDBPyConnection | None
T = TypeVar("T")


def load(
    source: str | os.PathLike[str] | IO[bytes],
    sink: SinkLike = None,
    options: LoadOptions | None = None,
    http: HttpPolicy | None = None,
    *,
    progress: Progress | None = None,
    table: str | None = None,
    format: Format | None = None,
    key: str | None = None,
    items_path: str | None = None,
    on_error: OnError | None = None,
) -> LoadReport:
    """Stream `source` (path, URL, `-` or binary file object) into `sink` and report.

    `sink` is a Sink, a function (per row: `fn(id, output, metadata, url)`; per batch:
    `fn(batch)`), a target (a DuckDB file path, `postgresql://...`, `delta:PATH`; see
    sinks/registry.py), an open DuckDB connection (its settings left alone, never closed), or
    None for `results.duckdb`. The load is all or nothing.
    `format`, `key`, `items_path` and `on_error` are shorthands for `options=LoadOptions(...)`
    (not both); `table` names the table of a target given as a string or a connection (or the
    default one).
    `http` bounds an http(s) download (HttpPolicy: timeouts, retries, its 6-hour deadline).
    """
    options = one_way_in(
        options, "load", format=format, key=key, items_path=items_path, on_error=on_error
    )
    return load_source(source, as_sink(sink, table), options, http, progress)


def load_source(
    source: str | os.PathLike[str] | IO[bytes],
    sink: Sink,
    options: LoadOptions,
    http: HttpPolicy | None = None,
    progress: Progress | None = None,
    version: str | None = None,
) -> LoadReport:
    """Open `source` and load it. A source that cannot be opened (HTTP 404, a connection
    refused, an unknown host, no such file) leaves its `failed` ledger row all the same, so
    that `history` says why the load did not happen."""
    named = _binary(_one_name(source))
    if isinstance(named, str):
        refuse_databases([named])
    info = LoadInfo(source_name(named), options, version=version)
    try:
        opened = open_source(named, max_bytes=options.max_bytes, policy=http)
    except Exception as exc:
        record_failure(sink, info, exc)
        raise
    return run_load(opened, sink, options, info, progress)


def record_failure(sink: Sink, info: LoadInfo, exc: BaseException) -> None:
    """The `failed` ledger row of a load that ended before `run_load` began it: its source
    could not be opened, or failed where it was read (a thread, a Dask worker)."""
    try:
        sink.begin(info)
    except Exception:  # the sink's own failure: the source's error is the one to raise
        return
    sink.abort(_abort_reason(exc))


def _binary(source: T) -> T:
    """A file opened in text mode yields str, which no parser reads: say how to open it."""
    if isinstance(source, io.TextIOBase):
        name = getattr(source, "name", "the file")
        raise TypeError(
            f"{name!s} is open in text mode: open it in binary mode, e.g. open(path, 'rb') "
            "(or pass the path itself)"
        )
    return source


def _one_name(source: str | os.PathLike[str] | IO[bytes]) -> str | os.PathLike[str] | IO[bytes]:
    """A local file by its absolute, normalised path, so that `_source` and the ledger name
    one file one way however its path was typed (`r.jsonl`, `./r.jsonl`, `/data/r.jsonl`)."""
    if hasattr(source, "read"):
        return source
    text = os.fspath(source)
    if text.lower().startswith("file://"):
        text = unquote(urlsplit(text).path)
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme and scheme[1].lower() not in _REMOTE_SCHEMES:
        known = ", ".join(f"{name}://" for name in ("file", *_REMOTE_SCHEMES))
        raise DownloadError(
            f"{display_name(text)}: unknown URL scheme {scheme[1]!r} (supported: {known})"
        )
    if text == "-" or scheme:
        return text
    return os.path.abspath(text)


def as_sink(sink: SinkLike, table: str | None = None) -> Sink:
    """The sink `sink` stands for. `table` applies only where this makes the DuckDBSink: for
    a path, a target string, None, or an open DuckDB connection (used as is: DuckDBSink
    leaves its settings alone and never closes it)."""
    takes_table = sink is None or isinstance(sink, (str, os.PathLike, DuckDBPyConnection))
    if table is not None and not takes_table:
        raise TypeError(
            f"table={table!r} applies to a DuckDB file or connection given as the sink; "
            f"{type(sink).__name__} has its own table (e.g. DuckDBSink(path, table))"
        )
    table = table or "results"
    if sink is None:
        return sink_for("results.duckdb", table)
    if isinstance(sink, (str, os.PathLike)):
        return sink_for(sink, table)
    if isinstance(sink, DuckDBPyConnection):
        return DuckDBSink(sink, table)
    if isinstance(sink, Sink):
        return sink
    if all(hasattr(sink, m) for m in ("begin", "write", "commit", "abort")):
        raise TypeError(
            f"{type(sink).__name__} has the Sink methods but declares no `capabilities`: add "
            "`capabilities = resultloader.SinkCapabilities()` (keeps_rejects=True if it keeps "
            "rejected rows)"
        )
    if callable(sink):
        return sink_from_callable(sink)
    raise TypeError(
        f"not a sink: {type(sink).__name__} (want a Sink, a function, a path or a DuckDB "
        "connection)"
    )


def run_load(
    opened: Opened,
    sink: Sink,
    options: LoadOptions,
    info: LoadInfo,
    progress: Progress | None = None,
    document_id: str | None = None,
) -> LoadReport:
    """Drive one load: every batch to the sink, then commit; abort on any failure."""
    options = with_provider(options)
    info = dataclasses.replace(info, options=options)
    if options.on_error == "quarantine" and not sink.capabilities.keeps_rejects:
        opened.close()  # opened by the caller, never read: do not leak the file or connection
        raise ResultLoaderError(
            f"{type(sink).__name__} cannot keep rejected rows: use on_error='skip' or a sink "
            "that stores rejects (DuckDBSink, PostgresSink, DeltaSink, MemorySink)"
        )
    started = time.perf_counter()
    report = LoadReport(
        info.source, provider=info.provider, job_id=info.job_id, status=info.job_status
    )
    fmt = options.format
    if fmt == "auto":
        head = opened.stream.peek(65536)[:65536] if hasattr(opened.stream, "peek") else b""
        fmt = detect_format(name_hint(info.source), opened.content_type, head, options.key)  # type: ignore[assignment]
    report.format = fmt
    info = dataclasses.replace(info, format=fmt)
    native = cast(JsonlChunkSink, sink).write_jsonl if sink.capabilities.reads_jsonl else None
    if "." in options.key:
        # DuckDB's native insert reads a top-level key: Python reads dotted keys (as exactly,
        # more slowly). A provider's mapping the sink maps in SQL where it can.
        native = None
    with _interrupts() as stops:
        try:
            sink.begin(info)
            first = _feed(opened, sink, native, fmt, options, info, report, progress, document_id)
            _count_bytes(report, opened)
            report.seconds = time.perf_counter() - started
            result = sink.commit(report)
        except BaseException as exc:
            # DuckDB turns Ctrl-C into RuntimeError("Query interrupted"): say what happened
            stop = stops[0] if stops else None
            why = _abort_reason(exc) if stop is None else _STOP_REASONS[stop]
            sink.abort(why)
            _count_bytes(report, opened)
            report.seconds = time.perf_counter() - started
            keep_report(exc, report)
            if stop is not None and not isinstance(exc, stop):
                raise stop from None
            raise
    if result is not None:
        report.rows_upserted = result.upserted
        report.rows_unchanged = result.unchanged
        report.duplicates = result.duplicates
        if result.null_outputs is not None and result.missing_metadata is not None:
            report.null_outputs = result.null_outputs
            report.missing_metadata = result.missing_metadata
        report.statuses, report.tokens = result.statuses, result.tokens
    report.hint = provider_hint(report, options, first)
    report.seconds = time.perf_counter() - started
    return report


def _feed(
    opened: Opened,
    sink: Sink,
    native: Callable[[JsonlChunk], BatchStats | None] | None,
    fmt: str,
    options: LoadOptions,
    info: LoadInfo,
    report: LoadReport,
    progress: Progress | None,
    document_id: str | None,
) -> dict[str, Any] | None:
    """Every batch of the source to the sink; the first row's top-level fields. The source is
    read in a thread; if it is still inside a read when the load stops (a stalled server,
    Ctrl-C), the stream is closed in the background, since closing waits for that read."""
    finished = threading.Event()
    first: dict[str, Any] | None = None
    batches = iter_batches(opened.stream, info.source, fmt, options, document_id)
    if native:  # the sink's own work on a chunk, done ahead in the reading thread
        prepare = cast(JsonlChunkSink, sink).prepare_jsonl
        batches = (prepare(b) if isinstance(b, JsonlChunk) else b for b in batches)
    try:
        with contextlib.closing(prefetch(batches, finished=finished)) as items:
            for item in items:
                first = first or _first_fields(item, options.key)
                stats = native(item) if native and isinstance(item, JsonlChunk) else None
                if stats is None:
                    batch = parse_chunk(item, options) if isinstance(item, JsonlChunk) else item
                    report.bad_rows += _handle_rejects(batch, options, info.source)
                    sink.write(batch)
                    stats = batch.stats()
                _tally(report, stats)
                if progress:
                    progress(opened.bytes_read, opened.size, report.rows_read)
    finally:
        if finished.is_set():
            opened.stream.close()
        else:
            threading.Thread(target=opened.stream.close, daemon=True).start()
    return first


def _first_fields(item: JsonlChunk | RowBatch, key: str) -> dict[str, Any] | None:
    """The first row's top-level fields (values only where cheap), to tell a provider's file."""
    if isinstance(item, JsonlChunk):
        with contextlib.suppress(orjson.JSONDecodeError):
            found = orjson.loads(item.data.split(b"\n", 1)[0])
            return found if isinstance(found, dict) else None
        return None
    if not item.ids:
        return None
    fields: dict[str, Any] = {key: item.ids[0]}
    for name, values in (("output", item.outputs), ("metadata", item.metadata)):
        if values[0] is not None:
            fields[name] = True
    extra: Any = {}
    with contextlib.suppress(ValueError):  # its numbers as written: orjson refuses 1e400
        extra = decode_exact(item.extras[0]) if item.extras[0] else {}
    return {**fields, **extra} if isinstance(extra, dict) else fields


def provider_hint(
    report: LoadReport, options: LoadOptions, first: dict[str, Any] | None
) -> str | None:
    """`these look like OpenAI Batch results: rerun with --as openai-batch`, when no row had an
    output and the first line is a provider's (only for a load that named no provider)."""
    if options.provider or options.mapping or not first or report.null_outputs < report.rows_read:
        return None
    found = looks_like(first)
    if found is None:
        return None
    return f"these look like {found.brand or found.name} results: rerun with --as {found.name}"


def keep_report(exc: BaseException, report: LoadReport) -> None:
    """Hand the counts so far to whoever reports the failure (the CLI's --json)."""
    with contextlib.suppress(AttributeError, TypeError):  # a few built-in types take none
        exc.resultloader_report = report  # type: ignore[attr-defined]


def report_of(exc: BaseException) -> LoadReport | None:
    """The counts a failed load had reached, if it got that far."""
    found = getattr(exc, "resultloader_report", None)
    return found if isinstance(found, LoadReport) else None


def _count_bytes(report: LoadReport, opened: Opened) -> None:
    """The data's size, and what was read to get it when the source is compressed."""
    report.bytes_read, report.data_bytes = opened.bytes_read, opened.data_bytes
    report.compression = opened.compression


def _abort_reason(exc: BaseException) -> str:
    if isinstance(exc, ResultLoaderError):
        return str(exc)
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


_STOP_REASONS: dict[type[KeyboardInterrupt], str] = {
    KeyboardInterrupt: "interrupted",
    Terminated: "terminated (SIGTERM)",
}


def stop_on_sigterm(signum: int, frame: Any) -> None:
    """A SIGTERM handler that stops like Ctrl-C (the CLI installs it for a whole command)."""
    raise Terminated


@contextlib.contextmanager
def _interrupts() -> Iterator[list[type[KeyboardInterrupt]]]:
    """Notice Ctrl-C and SIGTERM even where a library swallows the exception (DuckDB turns
    it into RuntimeError): the stops seen, first first. A signal whose handler the
    application chose is left alone."""
    seen: list[type[KeyboardInterrupt]] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    ours = {
        signal.SIGINT: (KeyboardInterrupt, (signal.default_int_handler,)),
        signal.SIGTERM: (Terminated, (signal.SIG_DFL, stop_on_sigterm)),
    }
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        stop = ours[signal.Signals(signum)][0]
        seen.append(stop)
        raise stop

    for signum, (_, defaults) in ours.items():
        if signal.getsignal(signum) in defaults:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield seen
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def _handle_rejects(batch: RowBatch, options: LoadOptions, source: str) -> int:
    if not batch.rejects:
        return 0
    if options.on_error == "fail":
        first = batch.rejects[0]
        raise ParseError(source, first.line, first.offset, first.reason)
    count = len(batch.rejects)
    if options.on_error == "skip":
        batch.rejects.clear()
    return count


def _tally(report: LoadReport, stats: BatchStats) -> None:
    report.rows_read += stats.rows
    report.null_outputs += stats.null_outputs
    report.missing_metadata += stats.missing_metadata

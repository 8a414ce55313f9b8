"""What the commands share: the common options, error handling, notices and the progress bar."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import click
import orjson

from .._columns import TYPES_HELP, Column, parse_column
from .._errors import HINTS, ParseError, ResultLoaderError, Terminated
from .._memory import DEFAULT_MEMORY, parse_size, size_text
from .._model import FORMATS, LoadOptions, LoadReport, human_size
from .._redact import display_name
from ..pipeline.load import Progress, report_of, stop_on_sigterm
from ..providers.poll import PollPolicy
from ..sources.download import HttpPolicy


# click.ParamType is generic from click 8.2 on, not before: the ignore covers both
class Size(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A size in bytes, `1048576`, `512KB`, `256MiB` or `1.5GB`: binary units with or without
    the i (1KB = 1KiB = 1024 bytes), one syntax for every size option (parse_size)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size < 1:
            self.fail(f"must be positive, not {value!r}", param, ctx)
        return size


SIZE = Size()

_COMMON = [
    click.option(
        "--into",
        default="results.duckdb",
        show_default=True,
        metavar="TARGET",
        help="Where to upsert: a DuckDB database file, postgresql://USER@HOST:PORT/DB "
        "(password from PGPASSWORD), delta:PATH (local or s3://), or "
        "iceberg:CATALOG/NAMESPACE.TABLE.",
    ),
    click.option("--table", default="results", show_default=True, help="Target table."),
    click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary."),
]


def _columns(
    ctx: click.Context, param: click.Parameter, specs: tuple[str, ...]
) -> tuple[Column, ...]:
    try:
        return tuple(parse_column(spec) for spec in specs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def examples(*lines: str) -> str:
    """A command's --help epilog: example command lines, kept as written (click's \\b marks a
    paragraph it must not rewrap). tests/cli/test_help.py parses each one."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_COMMON):
        fn = option(fn)
    return fn


def read_options(fn: Callable[..., Any], *, shaped: bool = False) -> Callable[..., Any]:
    """The reading options; `shaped`: the files' shape is the provider's, so the options that
    say how rows are found are hidden (and refused by the caller when given)."""
    options = [
        click.option(
            "--format",
            "fmt",
            default="auto",
            hidden=shaped,
            show_default=True,
            type=click.Choice(FORMATS),
            help="Input format; auto looks at the name, content type and first bytes.",
        ),
        click.option(
            "--delimiter",
            default=None,
            hidden=shaped,
            metavar="CHAR",
            help="CSV field separator (default: , for csv, a tab for tsv).",
        ),
        click.option(
            "--key",
            default="id",
            hidden=shaped,
            show_default=True,
            help="Field (or CSV column) that identifies a row, e.g. custom_id, or a dotted "
            "path to it in JSON, e.g. response.request_id.",
        ),
        click.option(
            "--items-path",
            default=None,
            hidden=shaped,
            metavar="PATH",
            help="For JSON documents: dotted path of the array whose items are rows.",
        ),
        click.option(
            "--on-error",
            default="fail",
            show_default=True,
            type=click.Choice(["fail", "skip", "quarantine"]),
            help="Bad rows: stop (nothing committed), count and skip, or keep them "
            "in <table>_rejects.",
        ),
        click.option(
            "--max-line-bytes",
            default=size_text(LoadOptions.max_line_bytes),
            show_default=True,
            type=SIZE,
            metavar="SIZE",
            help="Longest line (or CSV record) accepted, a size such as 1MiB; guards memory.",
        ),
        click.option(
            "--max-bytes",
            default=None,
            type=SIZE,
            metavar="SIZE",
            help="Most bytes a source may yield after decompression, e.g. 10GB (stops a "
            "decompression bomb); no limit by default.",
        ),
        click.option(
            "--download-timeout",
            default=None,
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Most time an http(s) download may take in all, resumes included "
            "[default: 21600, 6 hours].",
        ),
        click.option(
            "--speed-limit",
            default=None,
            type=click.FloatRange(min=0),
            metavar="BYTES",
            help="An http(s) download slower than this many bytes a second for --speed-time "
            "is cut and resumed where it stopped, as curl's (0: never) [default: 1024].",
        ),
        click.option(
            "--speed-time",
            default=None,
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="How long a download may stay below --speed-limit [default: 60].",
        ),
        click.option(
            "--memory",
            default=None,
            type=SIZE,
            metavar="SIZE",
            help="Memory the load may use beyond Python itself, e.g. 512MB or 2GB; more "
            f"spills less to <DB>.tmp/ [default: {size_text(DEFAULT_MEMORY)}].",
        ),
        click.option(
            "--column",
            "columns",
            multiple=True,
            callback=_columns,
            metavar="NAME=PATH[::TYPE]",
            help="A typed column beside the raw row, e.g. tokens=output.usage.total_tokens::bigint "
            f"(repeatable; PATH starts at id, output, metadata, url or extra; {TYPES_HELP}).",
        ),
        click.option(
            "--threads",
            default=None,
            type=click.IntRange(min=1),
            metavar="N",
            help="DuckDB's threads [default: the cores, as many as --memory allows].",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def poll_policy(kw: dict[str, Any]) -> PollPolicy:
    """The ingest commands' --timeout, --poll-interval, --no-wait and --concurrency."""
    policy = PollPolicy(timeout=kw["timeout"], interval=kw["poll_interval"])
    return replace(policy, wait=not kw["no_wait"], concurrency=kw.get("concurrency") or 8)


def http_policy(kw: Mapping[str, Any]) -> HttpPolicy:
    """The download policy of the options given (read_options'; ingest's --allow-local-urls)."""
    fields = {
        "deadline": kw.get("download_timeout"),
        "low_speed_limit": kw.get("speed_limit"),
        "low_speed_time": kw.get("speed_time"),
        "allow_local_urls": kw.get("allow_local_urls"),
    }
    return HttpPolicy(**{name: value for name, value in fields.items() if value is not None})


def print_report(report: LoadReport, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(report.to_dict()).decode())
    elif not quiet:
        click.echo(report.summary(), err=True)


OUT_OF_MEMORY = (
    "out of memory: this process may not use the memory the load needs (ulimit -v, or a "
    "container's limit); lower --memory or --threads, or raise the limit; nothing was committed"
)


@contextmanager
def handle_errors(as_json: bool = False, source: str | None = None) -> Iterator[None]:
    """Expected failures end in one line on stderr and a non-zero exit, never a traceback;
    with --json also in one JSON object on stdout: the error and the counts so far.
    SIGTERM stops like Ctrl-C (exit 143), unless something else handles it already."""
    try:
        with _sigterm_stops():
            yield
    except Terminated as exc:
        fail(exc, "terminated: nothing was committed", Terminated.exit_code, as_json, source)
    except KeyboardInterrupt as exc:
        fail(exc, "interrupted: nothing was committed", 130, as_json, source)
    except ResultLoaderError as exc:
        fail(exc, f"error: {on_one_line(str(exc))}", getattr(exc, "exit_code", 1), as_json, source)
    except (ValueError, OSError) as exc:
        fail(exc, f"error: {on_one_line(str(exc))}", 1, as_json, source)
    except MemoryError as exc:  # Python's, orjson's, Arrow's (ArrowMemoryError)
        fail(exc, f"error: {OUT_OF_MEMORY}", 1, as_json, source)
    except Exception as exc:  # e.g. a corrupt gzip stream (EOFError, zlib.error) mid-load
        reason = on_one_line(str(exc)) or "no details"
        line = f"error: {type(exc).__name__}: {reason}; nothing was committed"
        fail(exc, line, 1, as_json, source)


def fail(exc: BaseException, line: str, code: int, as_json: bool, source: str | None) -> None:
    line = in_cli_words(line)
    click.echo(line, err=True)
    if as_json:
        click.echo(orjson.dumps(failure_report(exc, line, source)).decode())
    sys.exit(code)


def failure_report(exc: BaseException, line: str, source: str | None) -> dict[str, Any]:
    """The report's fields (the counts a failed load reached, else zeros) and the error."""
    report = report_of(exc) or LoadReport(display_name(source or ""))  # no signature
    where = exc if isinstance(exc, ParseError) else None
    error = {
        "kind": _kind(exc),
        "message": line.removeprefix("error: "),
        "file": where.source if where else report.source or None,
        "line": where.line if where and where.line > 0 else None,
    }
    return {**report.to_dict(), "error": error}


def _kind(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return "Terminated"
    return "Interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield  # signals go to the main thread; or the application handles SIGTERM already
        return
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def result_line(fields: dict[str, Any]) -> str:
    """One source's or job's result as a JSON line, its error in the command line's words."""
    if isinstance(fields.get("error"), str):
        fields = {**fields, "error": in_cli_words(fields["error"])}
    return orjson.dumps(fields).decode()


def in_cli_words(text: str) -> str:
    """A library message as the command line says it: its hint names options as flags
    (`--on-error skip`), where Python's words (`on_error="skip"`) were."""
    for hint in HINTS:
        text = text.replace(hint.python, hint.cli)
    return text


def on_one_line(text: str) -> str:
    """Messages from libraries may span lines (excerpts, carets): the CLI prints one."""
    return " ".join(text.split())


@contextmanager
def notices(quiet: bool) -> Iterator[None]:
    """The library's warnings (a connection being retried) as plain lines on stderr."""
    logger = logging.getLogger("resultloader")
    handler: logging.Handler = logging.NullHandler()
    if not quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextmanager
def progress_bar(disabled: bool) -> Iterator[Progress | None]:
    """A bytes-and-rows bar on stderr, only when stderr is a terminal."""
    if disabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        _size_column(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("loading", total=None, rows=0)

    def update(done: int, total: int | None, rows: int) -> None:
        bar.update(task, completed=done, total=total, rows=rows)

    with bar:
        yield update


def _size_column() -> Any:
    """Bytes done, of the total, and the speed, in the summary's units (KiB, MiB, GiB)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class SizeColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            done = human_size(task.completed)
            total = f"/{human_size(task.total)}" if task.total else ""
            speed = f" {human_size(task.speed)}/s" if task.speed else ""
            return Text(f"{done}{total}{speed}", style="progress.download")

    return SizeColumn()

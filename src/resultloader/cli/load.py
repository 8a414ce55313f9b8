"""`resultloader load SOURCE...`: one source with a progress bar, or many with a line each."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import click

from .._columns import Column
from .._errors import DatabaseSource, ResultLoaderError
from .._model import Format, LoadOptions, OnError
from ..pipeline.load import as_sink, load
from ..pipeline.load_many import SourceResult, load_many
from ..providers.base import get_provider
from ..sinks.registry import sink_for
from ..sources.expand import is_glob
from ._common import (
    common_options,
    examples,
    handle_errors,
    http_policy,
    notices,
    print_report,
    progress_bar,
    read_options,
    result_line,
)


@click.command(
    "load",
    epilog=examples(
        "resultloader load results.jsonl.gz --into lake.duckdb",
        "resultloader load 'exports/**/*.csv' --key custom_id --on-error quarantine --workers 4",
    ),
)
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@read_options
@common_options
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Sources read and parsed at once (one writer).",
)
@click.option(
    "--as",
    "provider",
    default=None,
    metavar="PROVIDER",
    callback=lambda ctx, param, name: name and _provider_name(name),
    help="Read a provider's result file as `ingest PROVIDER` does (its row mapping and typed "
    "columns), e.g. --as openai-batch for a downloaded batch output file.",
)
@click.option("--atomic", is_flag=True, help="All the sources in one transaction.")
@click.option(
    "--engine",
    default=None,
    metavar="ENGINE",
    help="dask: read and parse on a local Dask cluster of --workers processes; "
    "dask://HOST:PORT: on that scheduler's workers.",
)
@click.option(
    "--parts-dir",
    default=None,
    metavar="DIR",
    help="Where Dask workers put their Parquet parts: a directory all machines see, or "
    "s3://... (default: a temp dir).",
)
def load_command(
    sources: tuple[str, ...],
    into: str,
    table: str,
    fmt: str,
    delimiter: str | None,
    key: str,
    items_path: str | None,
    on_error: str,
    max_line_bytes: int,
    max_bytes: int | None,
    download_timeout: float | None,
    speed_limit: float | None,
    speed_time: float | None,
    memory: str | None,
    threads: int | None,
    columns: tuple[Column, ...],
    provider: str | None,
    as_json: bool,
    quiet: bool,
    workers: int,
    atomic: bool,
    engine: str | None,
    parts_dir: str | None,
) -> None:
    """Load result files: paths, - for stdin, http(s):// or s3:// URLs, globs (* and **).

    gzip, bz2 and zstd are decompressed whatever the name says. Several sources: each is its
    own load, in the order given; a re-run skips those committed unchanged.
    """
    source, many = sources[0], is_many(sources, workers, atomic) or engine is not None
    if source == "-" and sys.stdin.isatty() and not quiet:
        click.echo("reading rows from standard input (end with Ctrl-D)...", err=True)
    with handle_errors(as_json and not many, source), notices(quiet), database_as_target():
        options = LoadOptions(
            format=cast(Format, fmt),  # click.Choice has checked both
            key=key,
            items_path=items_path,
            on_error=cast(OnError, on_error),
            max_line_bytes=max_line_bytes,
            max_bytes=max_bytes,
            delimiter=delimiter,
            memory=memory,
            threads=threads,
            provider=provider,
            columns=columns,
        )
        http = http_policy(
            {
                "download_timeout": download_timeout,
                "speed_limit": speed_limit,
                "speed_time": speed_time,
            }
        )
        if many:  # --json: one object per source, printed as each ends
            engine_options = {
                "workers": workers,
                "atomic": atomic,
                "engine": engine,
                "parts_dir": parts_dir,
                "http": http,
            }
            load_many_cli(list(sources), into, table, options, engine_options, as_json, quiet)
            return
        with progress_bar(quiet or as_json) as progress:
            sink = sink_for(into, table)
            report = load(source, sink, options=options, http=http, progress=progress)
        print_report(report, as_json, quiet)


def _provider_name(name: str) -> str:
    try:
        return get_provider(name).name
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@contextmanager
def database_as_target() -> Iterator[None]:
    """A DuckDB file among the sources, in the command line's words: the target, most likely,
    typed where a source goes (`load export.json target.duckdb`, as with `cp SRC DST`)."""
    try:
        yield
    except DatabaseSource as exc:
        if exc.kind != "DuckDB":
            raise
        hint = f"did you mean --into {shlex.quote(exc.path)}?"
        raise ResultLoaderError(f"{exc.path} is a database: {hint}") from None


def is_many(sources: tuple[str, ...], workers: int, atomic: bool) -> bool:
    """More than one source, a glob, or an option of many: else the one-source `load`."""
    return len(sources) > 1 or workers > 1 or atomic or is_glob(sources[0])


def load_many_cli(
    sources: list[str],
    into: str,
    table: str,
    options: LoadOptions,
    engine_options: dict[str, Any],
    as_json: bool,
    quiet: bool,
) -> None:
    """Each source's result as it comes, then a summary line; a failure ends the run with
    the failing source named (the caller's handler prints it and exits non-zero)."""
    results: list[SourceResult] = []

    def show(result: SourceResult) -> None:
        results.append(result)
        if as_json:
            click.echo(result_line(result.to_dict()))
        elif not quiet and result.outcome != "failed":  # a failure: the error line says it
            click.echo(f"{result.source}: {_line(result)}", err=True)

    try:
        load_many(sources, as_sink(into, table), options, each=show, **engine_options)
    except ResultLoaderError as exc:
        failed = next((r.source for r in results if r.outcome == "failed"), None)
        if failed and not str(exc).startswith(failed):
            named = ResultLoaderError(f"{failed}: {exc}")
            named.exit_code = getattr(exc, "exit_code", 1)  # type: ignore[attr-defined]
            raise named from None
        raise
    if not quiet and not as_json:
        loaded = sum(r.outcome == "loaded" for r in results)
        skipped = sum(r.outcome == "skipped" for r in results)
        click.echo(f"{loaded} loaded, {skipped} skipped (committed unchanged)", err=True)


def _line(result: SourceResult) -> str:
    if result.outcome == "skipped":
        return "skipped: committed before, unchanged"
    if result.report is None:
        return result.outcome
    if result.part_of:
        return f"{result.report.rows_read:,} rows read, committed with the others below"
    return result.report.summary()

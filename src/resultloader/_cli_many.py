"""`resultloader load SRC [SRC ...]`: many sources, one line (or JSON object) per source."""

from __future__ import annotations

from typing import Any

import click
import orjson

from ._errors import ResultLoaderError
from ._expand import is_glob
from ._many import SourceResult, load_many
from ._model import LoadOptions
from ._pipeline import as_sink


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
            click.echo(orjson.dumps(result.to_dict()).decode())
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

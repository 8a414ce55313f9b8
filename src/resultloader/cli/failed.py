"""`resultloader failed`: the keys of a batch's failed items, or their lines of its input file,
to submit them again (pipeline/failed.py; the table is read through its sink, any engine)."""

from __future__ import annotations

import sys

import click

from ..pipeline.failed import failed, failed_input
from ..providers import provider_names
from ._common import examples, handle_errors


@click.command(
    "failed",
    epilog=examples(
        "resultloader failed --into results.duckdb",
        "resultloader failed --into results.duckdb --input batch_input.jsonl",
        "resultloader failed --into delta:lake/answers --provider anthropic-batch",
    ),
)
@click.option(
    "--into",
    "--from",
    "target",
    default="results.duckdb",
    show_default=True,
    metavar="TARGET",
    help="The database holding the loaded results: a DuckDB file, postgresql://... or "
    "delta:PATH, as load --into takes them.",
)
@click.option("--table", default="results", show_default=True, help="The table (DuckDB, Postgres).")
@click.option(
    "--provider",
    type=click.Choice(provider_names()),
    metavar="NAME",
    help="The provider whose columns tell a failed item (default: the one the table's loads "
    "named).",
)
@click.option(
    "--input",
    "input_file",
    metavar="BATCH_INPUT.jsonl",
    help="The job's batch input file: print its lines of the failed items (as they are, in "
    "its order) instead of their keys.",
)
def failed_command(target: str, table: str, provider: str | None, input_file: str | None) -> None:
    """The items that did not succeed, one key a line on stdout: those whose status column
    is not succeeded, or that have an error (the latest load of each key counts).

    With --input, the batch input lines of exactly those items, JSONL on stdout, ready to
    submit as a new batch.
    """
    with handle_errors():
        if input_file is None:
            keys = failed(target, table=table, provider=provider)
            for key in keys:
                click.echo(key)
            click.echo(f"{len(keys)} failed items", err=True)
            return
        count = 0
        for line in failed_input(target, input_file, table=table, provider=provider):
            sys.stdout.buffer.write(line)
            count += 1
        sys.stdout.buffer.flush()
        click.echo(f"{count} input lines of failed items", err=True)

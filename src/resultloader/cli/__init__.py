"""The command line: a thin layer over `load` and `ingest`, a progress bar, a summary.

One module per command; this one makes the group and registers them.
"""

from __future__ import annotations

import click

from .failed import failed_command
from .history import history_command
from .ingest import ingest_group
from .load import load_command


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Start with: resultloader load FILE (then resultloader load --help). The guide: "
        "README.md and the docs/ pages of the source (mkdocs serve shows them as a site)."
    ),
)
@click.version_option(package_name="resultloader")
def main() -> None:
    """Land the results of asynchronous API jobs in DuckDB, Postgres, Delta or Iceberg (or
    your own sink), streaming."""


main.add_command(load_command)
main.add_command(ingest_group)
main.add_command(history_command)
main.add_command(failed_command)

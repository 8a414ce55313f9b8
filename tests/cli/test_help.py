"""What --help says: each option only where it applies, examples that the parser accepts, and
where to start."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from resultloader.cli import main
from resultloader.providers import get_provider, provider_names
from tests.support.cli import GOOD, run

COMMANDS = [
    ["load"],
    ["ingest"],
    ["history"],
    ["failed"],
    *(["ingest", name] for name in provider_names()),
]


def help_of(*command: str) -> str:
    done = CliRunner().invoke(main, [*command, "--help"])
    assert done.exit_code == 0, done.output
    return done.output


def examples_in(text: str) -> list[list[str]]:
    """The command lines the help shows (`resultloader ...`, one a line), as arguments."""
    lines = [line.strip() for line in text.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("resultloader ")]


def parse(args: list[str]) -> click.Context:
    """Parse `args` as the command line would, down to the command they name (its callback
    is not run): a misspelt option, a missing argument or a bad value raises UsageError."""
    command: click.Command = main
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"no command {name!r}"
        command = found
    return command.make_context(command.name, args)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_help_shows_examples_the_parser_accepts(command):
    text = help_of(*command)
    assert "Examples:" in text
    examples = examples_in(text[text.index("Examples:") :])
    assert 1 <= len(examples) <= 3
    for args in examples:
        assert args[: len(command)] == command, args  # an example of this very command
        parse(args)


def test_the_parser_would_refuse_a_wrong_example():
    with pytest.raises(click.UsageError):
        parse(["load", "r.jsonl", "--on-eror", "skip"])
    with pytest.raises(click.UsageError):
        parse(["ingest", "openai-batch", "--batch-id", "b", "--max-bytes", "lots"])


def test_the_top_level_help_says_where_to_start():
    text = help_of()
    assert "Start with: resultloader load FILE" in text
    assert "docs/" in " ".join(text.split())  # then the guide
    parse(["load", "FILE"])


@pytest.mark.parametrize("name", provider_names())
def test_since_is_listed_only_for_providers_that_can_list(name):
    text = help_of("ingest", name)
    assert ("--since" in text) == (get_provider(name).listing is not None)
    assert "Not for" not in text


@pytest.mark.parametrize("name", provider_names())
def test_row_shape_options_are_listed_only_where_the_provider_has_no_mapping(name):
    mapped = get_provider(name).mapping is not None
    text = help_of("ingest", name)
    for flag in ("--format", "--delimiter", "--key", "--items-path"):
        assert (flag in text) == (not mapped), flag


@pytest.mark.parametrize(
    "option", [["--key", "x"], ["--format", "csv"], ["--delimiter", ";"], ["--items-path", "a"]]
)
def test_a_row_shape_option_given_to_a_mapped_provider_is_refused_in_one_line(option):
    done = CliRunner().invoke(main, ["ingest", "openai-batch", "--batch-id", "b", *option])
    assert done.exit_code == 2
    assert "openai-batch: its result files are read as the API writes them" in done.output
    assert f"{option[0]} does not apply" in done.output


def test_ingest_help_names_every_target_not_only_duckdb():
    text = " ".join(help_of("ingest").split())
    assert "into DuckDB" not in text
    assert "--into" in text and "postgresql://" in text and "delta:" in text


def test_history_reads_from_a_database_named_by_from_or_into(write, tmp_path):
    write("r.jsonl", GOOD)
    assert run("load", "r.jsonl", "--into", "lake.duckdb", "-q", cwd=tmp_path).returncode == 0
    by_from = run("history", "--from", "lake.duckdb", "--json", cwd=tmp_path)
    by_into = run("history", "--into", "lake.duckdb", "--json", cwd=tmp_path)
    assert by_from.returncode == 0 and '"status":"committed"' in by_from.stdout
    assert by_into.stdout == by_from.stdout  # --into: the older name, kept
    text = " ".join(help_of("history").split())
    assert "--from" in text and "--into" in text and "older name" in text

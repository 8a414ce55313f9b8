"""Each way in names an option its own way: Python as the API spells it (`partial=True`), the
command line as a flag (`--partial`); one message, two wordings of its hint."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

import resultloader
from resultloader._errors import HINTS
from resultloader.cli import main
from resultloader.cli._common import in_cli_words
from resultloader.testing import MemorySink

LINE = '{"custom_id":"r1","response":{"status_code":200,"body":{}},"error":null}\n'


@pytest.mark.parametrize("hint", HINTS, ids=lambda h: h.cli)
def test_every_hint_says_python_in_python_and_flags_on_the_command_line(hint):
    assert "--" not in hint.python and "--" in hint.cli
    assert in_cli_words(f"x: {hint}") == f"x: {hint.cli}"


def test_a_key_of_ones_own_with_a_provider_is_refused_in_each_ones_words(write, tmp_path):
    source = write("out.jsonl", LINE)
    options = resultloader.LoadOptions(provider="openai-batch", key="x")
    with pytest.raises(ValueError, match="key= does not apply") as refused:
        resultloader.load(source, MemorySink(), options)
    assert "--key" not in str(refused.value)
    args = ["load", str(source), "--as", "openai-batch", "--key", "x"]
    done = CliRunner().invoke(main, [*args, "--into", str(tmp_path / "r.duckdb")])
    assert done.exit_code == 1 and "; --key does not apply" in done.output
    assert "key=" not in done.output


def test_since_for_a_provider_that_cannot_list_is_refused_in_python_words():
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="so since= cannot be used") as refused:
        resultloader.ingest_many("safetykit", [], MemorySink(), since=since)
    assert "--since" not in str(refused.value)

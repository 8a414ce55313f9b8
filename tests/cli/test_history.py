"""`resultloader history`: the ledger as a table, newest first, and one load with its rejects."""

from __future__ import annotations

import json

from click.testing import CliRunner

from resultloader.cli import main
from tests.support.cli import run

BAD = '{"id":"a","output":1}\nnot json\n{"no_id":1}\n'


def loads(tmp_path) -> list[dict]:
    done = run("history", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_history_lists_loads_newest_first_with_their_counts(write, tmp_path):
    write("bad.jsonl", BAD)
    write("good.jsonl", '{"id":"b"}\n{"id":"c"}\n')
    assert run("load", "bad.jsonl", "--on-error", "quarantine", "-q", cwd=tmp_path).returncode == 0
    assert run("load", "good.jsonl", "-q", cwd=tmp_path).returncode == 0
    assert run("load", "bad.jsonl", "-q", cwd=tmp_path).returncode == 1  # fails: a bad line
    found = loads(tmp_path)
    assert [(x["source"].rsplit("/", 1)[-1], x["status"]) for x in found] == [
        ("bad.jsonl", "failed"),
        ("good.jsonl", "committed"),
        ("bad.jsonl", "committed"),
    ]
    assert (found[1]["rows_read"], found[1]["rows_upserted"], found[2]["bad_rows"]) == (2, 2, 2)
    assert all(x["seconds"] is not None and x["seconds"] >= 0 for x in found)
    table = run("history", cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:3] == ["load", "when", "(UTC)"]
    assert "failed" in table[1] and "good.jsonl" in table[2]
    assert table[2].split()[4:8] == ["2", "2", "0", "0"]  # read, upserted, unchanged, bad
    limited = run("history", "--limit", "1", cwd=tmp_path).stdout.splitlines()
    assert len(limited) == 2 and "failed" in limited[1]


def test_history_of_one_load_shows_its_rejects(write, tmp_path):
    write("bad.jsonl", BAD)
    assert run("load", "bad.jsonl", "--on-error", "quarantine", "-q", cwd=tmp_path).returncode == 0
    load_id = loads(tmp_path)[0]["load_id"]
    done = run("history", load_id[:6], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"load_id:        {load_id}" in done.stdout
    assert "line 2: invalid JSON" in done.stdout and "line 3: no 'id' field" in done.stdout
    as_json = json.loads(run("history", load_id, "--json", cwd=tmp_path).stdout)
    assert [r["line"] for r in as_json["rejects"]] == [2, 3]


def test_history_errors_are_one_line(tmp_path):
    done = run("history", "--into", "nope.duckdb", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        1,
        "error: nope.duckdb: no loads recorded (it has no _resultloader_loads table)\n",
    )


def test_history_is_in_the_help():
    result = CliRunner().invoke(main, ["--help"])
    assert "history" in result.output
    result = CliRunner().invoke(main, ["history", "--help"])
    for words in ("--into", "--limit", "--json", "LOAD_ID", "newest first"):
        assert words in result.output

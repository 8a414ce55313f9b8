"""`resultloader failed` and resultloader.failed / failed_input: the keys of the items that did
not succeed, or their lines of the batch input file, from DuckDB, Postgres and Delta; and the
one-line refusals a new user meets. docs/resubmit.md's Python example runs here too."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import resultloader
from resultloader import LoadOptions
from tests.support.openai_lines import CLI, OPENAI_LINES, body, jsonl, run
from tests.support.typed_targets import target  # noqa: F401  (a fixture: each table sink)

# ruff: noqa: F811  (the `target` fixture, by name)

DOC = Path(__file__).resolve().parent.parent / "docs" / "resubmit.md"
# The job's input file as a user has it: items in another order than the results, a CRLF line,
# spacing and non-ASCII text as written, and a last line without its newline.
INPUT = (
    b'{"custom_id": "r5", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
    b'{"custom_id":"r1","body":{"messages":[{"role":"user","content":"hi"}]}}\n'
    b'{"custom_id":"r2","body":{"model":"gpt-5x","messages":[{"content":"\xc3\xa9t\xc3\xa9"}]}}\r\n'
    b"\n"
    b'{"custom_id":"r3","body":{}}\n'
    b'  {"custom_id":"r4","body":{"n":1.000}}'
)
RETRY = (
    b'{"custom_id": "r5", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
    b'{"custom_id":"r2","body":{"model":"gpt-5x","messages":[{"content":"\xc3\xa9t\xc3\xa9"}]}}\r\n'
    b'  {"custom_id":"r4","body":{"n":1.000}}\n'
)


def table_args(target) -> list[str]:
    return ["--table", target.table] if target.kind == "postgres" else []


def test_failed_lists_the_keys_then_the_input_lines_on_every_sink(write, tmp_path, target):
    out = write("batch_output.jsonl", jsonl(OPENAI_LINES))
    write("batch_input.jsonl", INPUT)
    where = ["--into", target.into, *table_args(target)]
    loaded = run("load", str(out), "--as", "openai-batch", *where, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    keys = run("failed", *where, cwd=tmp_path)
    assert keys.returncode == 0, keys.stderr
    assert keys.stdout == "r2\nr4\nr5\n"
    assert "3 failed items" in keys.stderr
    args = [*CLI, "failed", *where, "--input", "batch_input.jsonl"]
    done = subprocess.run(args, capture_output=True, cwd=tmp_path, timeout=120)  # bytes
    assert done.returncode == 0, done.stderr
    assert done.stdout == RETRY  # byte for byte, in the input's order
    # the same in Python
    table = target.table
    assert resultloader.failed(target.into, table=table) == ["r2", "r4", "r5"]
    lines = resultloader.failed_input(target.into, tmp_path / "batch_input.jsonl", table=table)
    assert b"".join(lines) == RETRY


def test_an_item_that_succeeds_on_resubmission_is_no_longer_failed(write, tmp_path):
    db = tmp_path / "results.duckdb"
    options = LoadOptions(provider="openai-batch")
    resultloader.load(write("out.jsonl", jsonl(OPENAI_LINES)), db, options)
    retried = {
        "id": "batch_req_9",
        "custom_id": "r2",
        "response": {"status_code": 200, "request_id": "q9", "body": body(3, "Now fine")},
        "error": None,
    }
    resultloader.load(write("retry_output.jsonl", jsonl([retried])), db, options)
    assert resultloader.failed(db) == ["r4", "r5"]  # the latest load of each key counts


def test_bedrock_items_are_keyed_by_record_id(write, tmp_path):
    lines = [
        {"recordId": "c1", "modelInput": {}, "modelOutput": {"content": [{"text": "ok"}]}},
        {"recordId": "c2", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}},
    ]
    db = tmp_path / "results.duckdb"
    resultloader.load(
        write("out.jsonl.out", jsonl(lines)), db, LoadOptions(provider="bedrock-batch")
    )
    given = b'{"recordId":"c1","modelInput":{}}\n{"recordId":"c2","modelInput":{"x":1}}\n'
    path = write("in.jsonl", given)
    assert resultloader.failed(db) == ["c2"]
    assert list(resultloader.failed_input(db, path)) == [
        b'{"recordId":"c2","modelInput":{"x":1}}\n'
    ]


def test_what_a_new_user_meets_is_one_line_saying_what_to_do(write, tmp_path):
    write("out.jsonl", jsonl(OPENAI_LINES))

    def refusal(*args: str) -> str:
        done = run("failed", *args, cwd=tmp_path)
        assert done.returncode == 1 and done.stdout == ""
        (line,) = done.stderr.splitlines()  # one line, no traceback
        return line

    assert "no table 'results'" in refusal("--into", "nothing.duckdb", "--provider", "openai-batch")
    run("load", "out.jsonl", "--into", "plain.duckdb", cwd=tmp_path)  # without --as
    assert "give --provider NAME" in refusal("--into", "plain.duckdb")
    said = refusal("--into", "plain.duckdb", "--provider", "openai-batch")
    assert "has no status column" in said and "--as openai-batch" in said
    said = refusal("--into", "plain.duckdb", "--provider", "shopify-bulk")
    assert "shopify-bulk declares no status or error column" in said
    run("load", "out.jsonl", "--as", "openai-batch", cwd=tmp_path)
    write("other_input.jsonl", '{"custom_id":"x1","body":{}}\n')
    said = refusal("--input", "other_input.jsonl")
    assert "no line has the custom_id of one of the 3 failed items" in said
    write("not_input.jsonl", '{"prompt":"hi"}\n')
    assert "line 1: no custom_id" in refusal("--input", "not_input.jsonl")
    assert "missing.jsonl: no such file" in refusal("--input", "missing.jsonl")


def test_the_python_example_of_docs_resubmit_runs(write, tmp_path, monkeypatch, capsys):
    lines = [
        {**line, "custom_id": line["custom_id"].replace("r", "request-")} for line in OPENAI_LINES
    ]
    write("batch_output.jsonl", jsonl(lines))
    write("batch_input.jsonl", INPUT.replace(b'"r', b'"request-'))
    monkeypatch.chdir(tmp_path)
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    exec(compile(example, str(DOC), "exec"), {})
    assert capsys.readouterr().out == "['request-2', 'request-4', 'request-5']\n"
    assert (tmp_path / "retry.jsonl").read_bytes() == RETRY.replace(b'"r', b'"request-')
    assert os.path.exists(tmp_path / "results.duckdb")
    assert json.loads((tmp_path / "retry.jsonl").read_bytes().splitlines()[0])["custom_id"] == (
        "request-5"
    )

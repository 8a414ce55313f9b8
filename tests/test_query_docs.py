"""The queries of docs/query.md, run on tables the suite loaded, with the answers they give."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import resultloader
from resultloader import LoadOptions
from resultloader.providers import get_provider
from tests.support.duckdb_files import query
from tests.support.openai_lines import OPENAI_LINES
from tests.support.typed_targets import TypedTarget

DOC = Path(__file__).resolve().parent.parent / "docs" / "query.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
LINES = [{**line, "custom_id": line["custom_id"].replace("r", "request-")} for line in OPENAI_LINES]
ANSWERS = [
    [("gpt-4o", 1, 20, 2, 22), ("gpt-4o-mini", 1, 10, 1, 11)],
    [
        ("request-2", "errored", "invalid_request_error", "Invalid model 'gpt-5x'"),
        ("request-4", "expired", "batch_expired", "not run before the window expired"),
        ("request-5", "cancelled", "batch_cancelled", "the batch was cancelled"),
    ],
    [("Hello “world” 🙂",)],
    None,  # the last load's rows: checked below
    [("invalid_request_error", 1)],
    "ledger",  # the loads' columns: checked below
]


def test_the_page_has_the_queries_this_test_answers():
    assert len(QUERIES) == len(ANSWERS)


def files(write) -> tuple[Path, Path]:
    """Two loads: the first three lines, then all of them."""
    first = write("first.jsonl", "".join(json.dumps(line) + "\n" for line in LINES[:3]))
    rest = write("rest.jsonl", "".join(json.dumps(line) + "\n" for line in LINES))
    return first, rest


def expected(n: int, rest: Path, first: Path) -> object:
    if ANSWERS[n] is None:  # the second load wrote only the two lines the first did not have
        return [("request-4", "expired", str(rest)), ("request-5", "cancelled", str(rest))]
    if ANSWERS[n] == "ledger":
        columns = ", ".join(c.declaration for c in get_provider("openai-batch").columns)
        assert columns.startswith("status text, model text, text text")
        return [(str(first), columns), (str(rest), columns)]
    return ANSWERS[n]


@pytest.mark.parametrize("n", range(len(ANSWERS)))
def test_each_query_answers_on_duckdb(write, tmp_path, n):
    first, rest = files(write)
    db = tmp_path / "results.duckdb"
    resultloader.load(first, db, LoadOptions(provider="openai-batch"))
    resultloader.load(rest, db, LoadOptions(provider="openai-batch"))
    rows = [tuple(r) for r in query(db, QUERIES[n])]
    assert rows == expected(n, rest, first)


@pytest.mark.parametrize("n", range(len(ANSWERS)))
def test_each_query_answers_on_postgres(write, postgres_url, monkeypatch, n):
    import psycopg

    from tests.support.pg_server import PASSWORD

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    schema = f"q{n}"  # each query its own `results`, as the page names it
    first, rest = files(write)
    for path in (first, rest):
        sink = resultloader.PostgresSink(postgres_url, f"{schema}.results")
        resultloader.load(path, sink, LoadOptions(provider="openai-batch"))
    with psycopg.connect(postgres_url, password=PASSWORD) as conn:
        conn.execute(f"SET search_path = {schema}")
        rows = [tuple(r) for r in conn.execute(QUERIES[n]).fetchall()]  # type: ignore[arg-type]
    assert rows == expected(n, rest, first)


@pytest.mark.parametrize("n", range(len(ANSWERS)))
def test_each_query_answers_on_delta(write, tmp_path, n):
    first, rest = files(write)
    target = TypedTarget("delta", tmp_path)  # read by DuckDB as `results`, through deltalake
    for path in (first, rest):
        resultloader.load(
            path, resultloader.DeltaSink(target.lake), LoadOptions(provider="openai-batch")
        )
    rows = [tuple(r) for r in target.query(QUERIES[n])]
    assert rows == expected(n, rest, first)

"""Provider files and typed columns, end to end: `load FILE --as PROVIDER`, `--column`, every
route, the summary, bad values, and columns that change between loads."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import resultloader
from resultloader import LoadOptions
from resultloader._columns import parse_column
from tests.support.duckdb_files import query
from tests.support.openai_lines import EXPECTED, OPENAI_LINES, TYPED, jsonl, routes, run
from tests.support.typed_targets import target  # noqa: F401  (a fixture: each table sink)

# ruff: noqa: F811  (the `target` fixture, by name)


def test_a_downloaded_openai_batch_file_loads_as_the_provider_with_its_typed_columns(
    write, tmp_path
):
    write("batch_output.jsonl", jsonl(OPENAI_LINES))
    done = run("load", "batch_output.jsonl", "--as", "openai-batch", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["statuses"] == {"succeeded": 2, "errored": 1, "expired": 1, "cancelled": 1}
    assert report["tokens"] == 33 and report["provider"] == "openai-batch"
    assert query(tmp_path / "results.duckdb", TYPED) == EXPECTED
    # nothing of a failure is dropped: the 400 answer's whole body is kept
    ((extra,),) = query(tmp_path / "results.duckdb", "SELECT extra FROM results WHERE id='r2'")
    assert json.loads(extra)["response"]["body"]["error"]["param"] == "model"
    said = run("load", "batch_output.jsonl", "--as", "openai-batch", cwd=tmp_path).stderr
    assert "1 cancelled, 1 errored, 1 expired, 2 succeeded, 33 tokens" in said
    assert "null output" not in said


def test_python_loads_the_same_table_as_the_command_line(write, target):
    path = write("out.jsonl", jsonl(OPENAI_LINES))
    report = resultloader.load(path, target.sink(), LoadOptions(provider="openai-batch"))
    assert report.statuses == {"succeeded": 2, "errored": 1, "expired": 1, "cancelled": 1}
    assert report.tokens == 33
    assert [tuple(r) for r in target.query(TYPED)] == EXPECTED
    again = resultloader.load(path, target.sink(), LoadOptions(provider="openai-batch"))
    assert (again.rows_upserted, again.rows_unchanged) == (0, 5)


def test_without_as_the_summary_says_what_the_file_looks_like(write, tmp_path):
    write("out.jsonl", jsonl(OPENAI_LINES))
    done = run("load", "out.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no row had an output" in done.stderr
    assert "these look like OpenAI Batch results: rerun with --as openai-batch" in done.stderr
    plain = write("plain.jsonl", '{"id":"a","output":null}\n')
    assert resultloader.load(plain, tmp_path / "p.duckdb").hint is None  # no provider's shape


ROWS = [
    {"id": "a", "output": {"usage": {"total": 12}, "p": "12.50", "t": "x", "pad": 0}},
    {"id": "b", "output": {"usage": {"total": 98765432109876543}, "p": 0.1, "pad": 0}},
    {"id": "c", "output": None, "pad": 0},
    {"id": "d", "output": {"usage": {}, "p": 1, "items": [{"t": "p"}, {"t": "q"}], "pad": 0}},
]
COLUMNS = (
    parse_column("total=output.usage.total::bigint"),
    parse_column("price=output.p::decimal(10,2)"),
    parse_column("joined=output.items[*].t"),
    parse_column("first=output.items[0].t"),
)


@pytest.mark.parametrize("threads", [None, 16])  # 16: as on a 16-core server
def test_every_route_types_the_same_values(write, target, threads):
    tables = {}
    for name, path in routes(write, ROWS).items():
        into = target.another()
        options = LoadOptions(columns=COLUMNS, threads=threads)
        resultloader.load(path, into.sink(), options)
        sql = "SELECT id, total, price, joined, first FROM results ORDER BY id"
        tables[name] = [tuple(row) for row in into.query(sql)]
    assert tables["jsonl"] == [
        ("a", 12, Decimal("12.50"), None, None),
        ("b", 98765432109876543, Decimal("0.10"), None, None),
        ("c", None, None, None, None),
        ("d", None, Decimal("1.00"), "pq", "p"),
    ]
    assert all(table == tables["jsonl"] for table in tables.values()), tables


@pytest.mark.parametrize("on_error", ["fail", "skip", "quarantine"])
def test_a_value_that_does_not_fit_is_a_bad_row_on_every_route(write, target, on_error):
    lines = [*ROWS, {"id": "e", "output": {"usage": {"total": 1e400}, "pad": 0}}]
    lines[-1]["output"]["usage"]["total"] = "NUMBER"
    for name, path in routes(write, lines, number="1e400").items():
        into = target.another()
        options = LoadOptions(columns=COLUMNS, on_error=on_error)  # type: ignore[arg-type]
        if on_error == "fail":
            with pytest.raises(
                resultloader.ParseError, match="column 'total': not a bigint: 1e400"
            ):
                resultloader.load(path, into.sink(), options)
            assert into.query("SELECT count(*) FROM results") in ([], [(0,)])
            continue
        report = resultloader.load(path, into.sink(), options)
        assert report.bad_rows == 1, name
        ids = [("a",), ("b",), ("c",), ("d",)]
        assert [tuple(r) for r in into.query("SELECT id FROM results ORDER BY id")] == ids
        if on_error == "quarantine":
            assert [tuple(r) for r in into.query("SELECT reason, raw FROM results_rejects")] == [
                ("column 'total': not a bigint: 1e400", "1e400")
            ]


def test_a_new_column_fills_on_the_next_load_and_a_changed_type_is_refused(write, target):
    path = write("r.jsonl", jsonl(ROWS))
    resultloader.load(path, target.sink())
    report = resultloader.load(path, target.sink(), LoadOptions(columns=COLUMNS[:1]))
    assert (report.rows_upserted, report.rows_unchanged) == (2, 2)  # a and b gain `total`
    assert [tuple(r) for r in target.query("SELECT id, total FROM results ORDER BY id")] == [
        ("a", 12),
        ("b", 98765432109876543),
        ("c", None),
        ("d", None),
    ]
    again = resultloader.load(path, target.sink(), LoadOptions(columns=COLUMNS[:1]))
    assert (again.rows_upserted, again.rows_unchanged) == (0, 4)  # typed values compared too
    plain = resultloader.load(path, target.sink())  # no column declared: the rows' stay
    assert (plain.rows_upserted, plain.rows_unchanged) == (0, 4)
    assert target.query("SELECT total FROM results WHERE id = 'a'") == [(12,)]
    wider = parse_column("total=output.usage.total::double")
    with pytest.raises(
        resultloader.SinkError, match=r"column 'total' of .* declares it (DOUBLE|double)"
    ):
        resultloader.load(path, target.sink(), LoadOptions(columns=(wider,)))
    failed = "SELECT count(*) FROM _resultloader_loads WHERE status = 'failed'"
    assert target.query(failed) == [(0,)]
    loads = target.query("SELECT columns FROM _resultloader_loads ORDER BY started_at")
    assert [tuple(r) for r in loads] == [(None,), ("total bigint",), ("total bigint",), (None,)]


def test_postgres_gets_the_same_typed_columns_in_its_own_types(postgres_url, write, monkeypatch):
    import psycopg

    from tests.support.pg_server import PASSWORD

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    table = "typed_openai"
    path = write("out.jsonl", jsonl(OPENAI_LINES))
    sink = resultloader.PostgresSink(postgres_url, table)
    report = resultloader.load(path, sink, LoadOptions(provider="openai-batch"))
    assert report.statuses == {"succeeded": 2, "errored": 1, "expired": 1, "cancelled": 1}
    assert report.tokens == 33
    with psycopg.connect(postgres_url, password=PASSWORD) as conn:
        rows = conn.execute(TYPED.replace("FROM results", f"FROM {table}")).fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = %s",
                [table],
            ).fetchall()
        )
    assert rows == EXPECTED
    assert (types["total_tokens"], types["status"]) == ("bigint", "text")
    again = resultloader.load(path, resultloader.PostgresSink(postgres_url, table),
                              LoadOptions(provider="openai-batch"))  # fmt: skip
    assert (again.rows_upserted, again.rows_unchanged) == (0, 5)
    columns = (parse_column("total_tokens=output.usage.total_tokens::double"),)
    with pytest.raises(resultloader.SinkError, match="'total_tokens' of table 'typed_openai'"):
        resultloader.load(path, resultloader.PostgresSink(postgres_url, table),
                          LoadOptions(provider="openai-batch", columns=columns))  # fmt: skip

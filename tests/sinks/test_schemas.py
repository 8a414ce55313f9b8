"""Schema-qualified tables (`--table staging.results`): the table, its rejects and the ledger in
that schema, made if missing, on every sink that has schemas (DuckDB, PostgreSQL; the sink
contract runs there too, tests/sinks/test_semantics.py). A Delta table has none: refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import duckdb
import psycopg
import pytest

import resultloader
from resultloader import DuckDBSink
from resultloader._columns import parse_column
from tests.support.duckdb_files import query
from tests.support.pg_server import PASSWORD

BAD = '{"id":"a","output":1}\nnot json\n'


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resultloader", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_a_duckdb_table_in_a_schema_keeps_its_rejects_and_ledger_there(write, tmp_path):
    db = tmp_path / "r.duckdb"
    source = write("r.jsonl", BAD)
    done = cli(
        "load",
        str(source),
        "--into",
        str(db),
        "--table",
        "staging.results",
        "--on-error",
        "quarantine",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    resultloader.load(write("plain.jsonl", '{"id":"p"}\n'), db)  # the main schema's own
    tables = query(db, "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL")
    assert tables == [
        ("main", "_resultloader_loads"),
        ("main", "results"),
        ("staging", "_resultloader_loads"),
        ("staging", "results"),
        ("staging", "results_rejects"),
    ]
    assert query(db, "SELECT id, output FROM staging.results") == [("a", "1")]
    assert query(db, "SELECT line, raw FROM staging.results_rejects") == [(2, "not json")]
    assert query(db, "SELECT target, status FROM staging._resultloader_loads") == [
        ("staging.results", "committed")
    ]
    again = resultloader.load(source, db, table="staging.results", on_error="quarantine")
    assert (again.rows_upserted, again.rows_unchanged) == (0, 1)
    listed = cli("history", "--into", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    loads = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(x["target"] for x in loads) == ["results", "staging.results", "staging.results"]
    first = [x for x in loads if x["target"] == "staging.results"][-1]
    one = cli("history", first["load_id"], "--into", str(db))
    assert "rejects (1, in staging.results_rejects):" in one.stdout

    def outcomes() -> list[str]:
        options = resultloader.LoadOptions(on_error="quarantine")
        found = resultloader.load_many([str(source)], db, options, table="staging.results")
        return [r.outcome for r in found]

    assert outcomes() == ["loaded"]
    assert outcomes() == ["skipped"]  # its ledger, in its schema, is read


def test_a_schema_named_like_an_attached_database_is_the_schema(write):
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS other")
    sink = DuckDBSink(con, "other.results")
    resultloader.load(write("r.jsonl", '{"id":"a"}\n'), sink)
    found = con.execute(
        "SELECT database_name, schema_name FROM duckdb_tables() WHERE table_name = 'results'"
    ).fetchall()
    assert found == [("memory", "other")]  # not the attached database's main schema


@pytest.mark.parametrize(
    "table",
    ["staging.", ".results", "a.b.c", "staging.select", "staging._resultloader_loads", "x.1y"],
)
def test_bad_schema_qualified_names_are_refused(table):
    with pytest.raises(ValueError, match="table"):
        DuckDBSink(":memory:", table)


def test_a_postgres_table_in_a_schema(postgres_url, write, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    schema = f"s_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.moderation"
    report = resultloader.load(
        write("r.jsonl", BAD), postgres_url, table=table, on_error="quarantine"
    )
    assert report.rows_upserted == 1
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            [schema],
        ).fetchall()
        ledger = conn.execute(
            f"SELECT target, status FROM {schema}._resultloader_loads"  # type: ignore[arg-type]
        ).fetchall()
    assert found == [("_resultloader_loads",), ("moderation",), ("moderation_rejects",)]
    assert ledger == [(table, "committed")]
    resultloader.load(write("p.jsonl", '{"id":"a"}\n'), postgres_url, table="public.moderation")
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT id FROM public.moderation").fetchall() == [("a",)]


def test_a_delta_table_has_no_schema(tmp_path, write):
    with pytest.raises(ValueError, match="no schema") as caught:
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), f"delta:{tmp_path}", table="s.t")
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("_delta_log"))


def test_typed_columns_of_a_table_in_a_schema_keep_their_type(write, tmp_path):
    path, db = write("r.jsonl", '{"id":"a","output":{"n":12}}\n'), tmp_path / "r.duckdb"
    bigint = resultloader.LoadOptions(columns=(parse_column("n=output.n::bigint"),))
    resultloader.load(path, db, bigint, table="staging.results")
    assert query(db, "SELECT id, n FROM staging.results") == [("a", 12)]
    double = resultloader.LoadOptions(columns=(parse_column("n=output.n::double"),))
    with pytest.raises(resultloader.SinkError, match=r"'n' of table 'staging\.results' is BIGINT"):
        resultloader.load(path, db, double, table="staging.results")

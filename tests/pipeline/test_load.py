from __future__ import annotations

import duckdb
import orjson

import resultloader
from resultloader.testing import MemorySink
from tests.support.duckdb_files import query
from tests.support.rows import SEED_ROWS


def rows(db, table="results"):
    return {r[0]: r[1:] for r in query(db, f"SELECT id, output, metadata, url, extra FROM {table}")}


def test_seed_rows_land_in_the_default_table(write, tmp_path):
    src = write("r.jsonl", SEED_ROWS)
    report = resultloader.load(src, tmp_path / "r.duckdb")
    assert (report.rows_read, report.rows_upserted, report.bad_rows) == (2, 2, 0)
    got = rows(tmp_path / "r.duckdb")
    assert orjson.loads(got["product_12345"][0])["labels"] == [
        {"label": "policy.example_violation"}
    ]
    assert got["product_67890"][1] == "{}"


def test_null_output_missing_metadata_and_extra_fields(write, tmp_path):
    src = write(
        "r.jsonl",
        '{"id":"a","output":null,"url":"u"}\n{"id":"b","metadata":null,"score":3,"tags":["x"]}\n',
    )
    report = resultloader.load(src, tmp_path / "r.duckdb")
    got = rows(tmp_path / "r.duckdb")
    assert got["a"] == (None, "{}", "u", None)
    assert got["b"][0] is None and got["b"][1] == "{}"
    assert orjson.loads(got["b"][3]) == {"score": 3, "tags": ["x"]}
    assert (report.null_outputs, report.missing_metadata) == (2, 2)


def test_last_duplicate_wins_within_and_across_loads(write, tmp_path):
    db = tmp_path / "r.duckdb"
    lines = [f'{{"id":"k","output":{i}}}' for i in range(5)]
    resultloader.load(write("a.jsonl", "\n".join(lines) + "\n"), db)
    assert rows(db)["k"][0] == "4"  # DuckDB's INSERT OR REPLACE would have kept 0
    resultloader.load(write("b.jsonl", '{"id":"k","output":"new"}\n'), db)
    assert rows(db)["k"][0] == '"new"'


def test_reload_leaves_table_unchanged(write, tmp_path):
    db = tmp_path / "r.duckdb"
    src = write("r.jsonl", SEED_ROWS)
    resultloader.load(src, db)
    con = duckdb.connect(str(db))
    before = con.execute("SELECT * FROM results ORDER BY id").fetchall()
    con.close()
    report = resultloader.load(src, db)
    con = duckdb.connect(str(db))
    assert con.execute("SELECT * FROM results ORDER BY id").fetchall() == before
    con.close()
    assert (report.rows_upserted, report.rows_unchanged) == (0, 2)


def test_thirty_digit_integer_and_long_decimal_are_stored_exactly(write, tmp_path):
    output = '{"big":123456789012345678901234567890,"d":0.1000000000000000055511151231257827}'
    text = f'{{"id":"n","output":{output}}}\n'
    db = tmp_path / "r.duckdb"
    resultloader.load(write("n.jsonl", text), db)
    assert rows(db)["n"][0] == (
        '{"big":123456789012345678901234567890,"d":0.1000000000000000055511151231257827}'
    )


def test_per_row_function_gets_the_seed_four_arguments(write):
    calls = []

    def upsert_result(id, output, metadata, url):
        calls.append((id, output, metadata, url))

    resultloader.load(write("r.jsonl", SEED_ROWS + '{"id":"x","output":null}\n'), upsert_result)
    assert calls[2] == ("x", None, {}, None)
    assert calls[1] == (
        "product_67890",
        {
            "actions": [{"action": "manual_review", "queue": "high_risk"}],
            "labels": [],
            "fields": {},
        },
        {},
        "https://app.safetykit.com/...",
    )


def test_memory_sink_keeps_the_last_row(write):
    sink = MemorySink()
    resultloader.load(write("r.jsonl", '{"id":"a","output":1}\n{"id":"a","output":2}\n'), sink)
    assert sink.rows["a"]["output"] == 2

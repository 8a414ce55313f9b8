"""Quarantined rows: tied to their load, kept once however often a load is re-run."""

from __future__ import annotations

import duckdb

import resultloader
from resultloader import DuckDBSink, LoadOptions
from tests.support.duckdb_files import query

BAD = '{"id":"a","output":1}\nnot json\n{"no_id":1}\n[1]\n{"id":"b"}\n'


def test_rerunning_a_quarantine_load_adds_no_rejects_and_ties_them_to_the_ledger(write, tmp_path):
    path = write("bad.jsonl", BAD)
    db = tmp_path / "r.duckdb"
    options = LoadOptions(on_error="quarantine")
    for _ in range(3):
        report = resultloader.load(path, db, options=options)
        assert report.bad_rows == 3
    rejects = query(db, "SELECT line, load_id FROM results_rejects ORDER BY line")
    assert [line for line, _ in rejects] == [2, 3, 4]
    first_load = query(db, "SELECT load_id FROM _resultloader_loads ORDER BY started_at LIMIT 1")[
        0
    ][0]
    assert {load_id for _, load_id in rejects} == {first_load}


def test_a_changed_file_adds_only_its_new_rejects(write, tmp_path):
    path = write("bad.jsonl", BAD)
    db = tmp_path / "r.duckdb"
    resultloader.load(path, db, on_error="quarantine")
    write("bad.jsonl", BAD + "also bad\n")
    resultloader.load(path, db, on_error="quarantine")
    loads = [r[0] for r in query(db, "SELECT load_id FROM _resultloader_loads ORDER BY started_at")]
    rows = query(db, "SELECT line, load_id FROM results_rejects ORDER BY line")
    assert rows == [(2, loads[0]), (3, loads[0]), (4, loads[0]), (6, loads[1])]


def test_an_old_rejects_table_gets_a_load_id_column(write, tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE results_rejects (_source VARCHAR, line BIGINT, byte_offset BIGINT,"
        " reason VARCHAR, raw VARCHAR, _loaded_at TIMESTAMP)"
    )
    con.execute("INSERT INTO results_rejects VALUES ('old', 1, 0, 'why', 'x', NULL)")
    con.close()
    resultloader.load(write("bad.jsonl", BAD), db, on_error="quarantine")
    rows = query(db, "SELECT _source, line, load_id IS NULL FROM results_rejects ORDER BY line")
    assert rows[0] == ("old", 1, True)
    assert len(rows) == 4 and not any(r[2] for r in rows[1:])


def test_no_rejects_table_without_quarantine(write, tmp_path):
    db = tmp_path / "r.duckdb"
    resultloader.load(write("bad.jsonl", BAD), DuckDBSink(db), on_error="skip")
    tables = {r[0] for r in query(db, "SELECT table_name FROM information_schema.tables")}
    assert "results" in tables and "results_rejects" not in tables

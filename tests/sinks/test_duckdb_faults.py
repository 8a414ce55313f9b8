"""Issue 11 (1-4, 14) and issue 12 (7) against real DuckDB files: internal tables never reach a
user's, columns are matched by name, a foreign schema is refused before anything is created,
and a killed load's debris (ledger row, spill files, temp copy) is cleared by the next load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from tests.support.duckdb_files import query

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
ROWS = '{"id":"a","output":{"x":1},"metadata":{"m":2}}\n{"id":"b","output":[3]}\n'


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def make(db: Path, *sql: str) -> None:
    con = duckdb.connect(str(db))
    try:
        for statement in sql:
            con.execute(statement)
    finally:
        con.close()


def tables(db: Path) -> set[str]:
    return {r[0] for r in query(db, "SELECT table_name FROM duckdb_tables()")}


@pytest.mark.parametrize("name", ["_rl_same", "_rl_dups", "_rl_stage", "_RL_stage_rejects"])
def test_internal_table_names_are_refused_cleanly(tmp_path, write, name):
    src, db = write("r.jsonl", ROWS), tmp_path / "x.duckdb"
    result = run("load", str(src), "--into", str(db), "--table", name, "-q")
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: invalid table name")
    assert "resultloader's own" in result.output
    assert result.output.count("\n") == 1


@pytest.mark.parametrize("bad", [False, True])
def test_users_tables_named_like_internal_ones_are_never_dropped(tmp_path, write, bad):
    db = tmp_path / "x.duckdb"
    make(
        db,
        "CREATE TABLE _rl_same (v INT)",
        "INSERT INTO _rl_same VALUES (1)",
        "CREATE TABLE _rl_dups (v INT)",
        "INSERT INTO _rl_dups VALUES (2)",
        "CREATE TABLE _rl_stage (v INT)",
        "INSERT INTO _rl_stage VALUES (3)",
    )
    src = write("r.jsonl", ROWS + ("{bad\n" if bad else ""))
    for _ in range(2):  # a first load, then a re-load (which compares with _rl_same)
        result = run("load", str(src), "--into", str(db), "-q")
        assert result.exit_code == (1 if bad else 0), result.output
    assert query(db, "SELECT v FROM _rl_same") == [(1,)]
    assert query(db, "SELECT v FROM _rl_dups") == [(2,)]
    assert query(db, "SELECT v FROM _rl_stage") == [(3,)]
    if not bad:
        assert query(db, "SELECT count(*) FROM results") == [(2,)]


def test_columns_in_another_order_are_matched_by_name(tmp_path, write):
    db = tmp_path / "x.duckdb"
    make(
        db,
        "CREATE TABLE results (id VARCHAR, metadata JSON, output JSON, _loaded_at TIMESTAMP,"
        " extra JSON, _source VARCHAR, url VARCHAR, note VARCHAR)",
    )
    src = write("r.jsonl", ROWS + '{"id":"c","output":"o","url":"u","z":1}\n')
    result = run("load", str(src), "--into", str(db), "-q")
    assert result.exit_code == 0, result.output
    rows = query(db, "SELECT id, output, metadata, url, extra, note FROM results ORDER BY id")
    assert rows == [
        ("a", '{"x":1}', '{"m":2}', None, None, None),
        ("b", "[3]", "{}", None, None, None),
        ("c", '"o"', "{}", "u", '{"z":1}', None),
    ]
    assert query(db, "SELECT count(*) FROM results WHERE _source LIKE '%r.jsonl'") == [(3,)]
    # a re-load compares by name too: nothing changes
    again = resultloader.load(src, str(db))
    assert (again.rows_unchanged, again.rows_upserted) == (3, 0)


def test_a_table_with_another_schema_is_refused_before_anything_is_created(tmp_path, write):
    db = tmp_path / "x.duckdb"
    make(db, "CREATE TABLE results (id VARCHAR, body VARCHAR)")
    result = run("load", str(write("r.jsonl", ROWS)), "--into", str(db), "-q")
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.count("\n") == 0 and "Binder" not in line
    assert "table 'results' exists with other columns" in line
    assert "missing: output, metadata, url, extra, _source, _loaded_at" in line
    assert tables(db) == {"results"}


def test_a_killed_loads_ledger_row_spill_files_and_temp_copy_are_cleared(tmp_path):
    """kill -9 mid-load (a JSON array: spooled to TMPDIR, and spilling to <db>.tmp); the next
    load marks the ledger row abandoned and removes what the dead process left."""
    db, tmp = tmp_path / "x.duckdb", tmp_path / "tmp"
    tmp.mkdir()
    array = tmp_path / "big.json"
    with array.open("w") as out:
        out.write("[")
        out.write(",".join(f'{{"id":"{i}","output":"{"x" * 200}{i}"}}' for i in range(300_000)))
        out.write("]")
    env = {**os.environ, "TMPDIR": str(tmp)}
    code = (
        "import resultloader; from resultloader import DuckDBSink, LoadOptions;"
        f"resultloader.load({str(array)!r}, DuckDBSink({str(db)!r}),"
        " options=LoadOptions(memory='192MB'))"  # the least budget: DuckDB gets 64 MB
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    spill = Path(f"{db}.tmp")
    for _ in range(3000):  # until it has spooled the array and spilled
        spooled = list(tmp.glob("resultloader-*"))
        spilled = list(spill.glob("duckdb_temp_*")) if spill.exists() else []
        if spooled and spilled:
            break
        assert proc.poll() is None, "the load ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp.glob(f"resultloader-{proc.pid}-*"))
    assert list(spill.glob(f"duckdb_temp_{proc.pid}_*"))
    assert query(db, "SELECT status FROM _resultloader_loads") == [("running",)]
    small = tmp_path / "small.jsonl"
    small.write_text(ROWS)
    before = time.time()
    subprocess.run([*CLI, "load", str(small), "--into", str(db), "-q"], env=env, check=True)
    rows = query(
        db,
        "SELECT status, epoch(finished_at), error FROM _resultloader_loads ORDER BY started_at",
    )
    assert [r[0] for r in rows] == ["abandoned", "committed"]
    assert rows[0][1] >= before - 1
    assert "ended without finishing" in rows[0][2] and "noticed at" in rows[0][2]
    assert not list(tmp.glob(f"resultloader-{proc.pid}-*"))
    assert not list(spill.glob(f"duckdb_temp_{proc.pid}_*"))

"""The memory budget and DuckDB's threads; the user's own connection; a non-DuckDB --into."""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import resultloader
from resultloader import LoadOptions
from resultloader._memory import Budget, parse_size, size_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import generate

from tests.support.duckdb_files import query
from tests.support.row_files import many_rows

SCRIPT = str(Path(sys.executable).with_name("resultloader"))
SETTINGS = ("memory_limit", "threads", "preserve_insertion_order")


def test_a_load_at_16_threads_as_on_a_16_core_server_fits_the_default_budget(tmp_path):
    source, db = tmp_path / "many.jsonl", tmp_path / "r.duckdb"
    distinct = many_rows(source)
    report = resultloader.load(source, db, options=LoadOptions(threads=5))
    assert (report.rows_read, report.rows_upserted) == (1_000_000, distinct)
    assert report.duplicates == 1_000_000 - distinct
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM results") == [(distinct, distinct)]


def test_the_threads_follow_from_the_memory_and_too_many_are_refused_up_front():
    assert Budget.choose("2GB", 64).threads == 64
    assert 1 <= Budget.choose("192MB").threads <= 4  # 64 MiB for DuckDB: 4 threads at most
    with pytest.raises(ValueError, match="64 threads need a memory budget of at least 1245MB"):
        LoadOptions(memory="512MB", threads=64)
    with pytest.raises(ValueError, match="at least 192MB"):
        LoadOptions(memory="100MB")
    with pytest.raises(ValueError, match="not a size"):
        LoadOptions(memory="lots")
    assert parse_size("1.5 GiB") == parse_size("1.5G") == 3 * 2**29
    assert parse_size(" 256MB ") == 256 * 2**20
    assert parse_size("1KB") == parse_size("1kib") == parse_size("1k") == 1024  # binary units
    assert parse_size("9007199254740993") == 9007199254740993  # digits: exact, not via float


def test_a_size_is_shown_as_it_is_read_back():
    for size in (1, 1000, 1024, 1536, 256 * 2**20, 3 * 2**30, 2**40):
        assert parse_size(size_text(size)) == size
    assert (size_text(256 * 2**20), size_text(2**30), size_text(1536)) == ("256MiB", "1GiB", "1536")


def test_a_load_into_a_database_the_user_has_open_leaves_its_settings_alone(write, tmp_path):
    db = str(tmp_path / "nb.duckdb")
    con = duckdb.connect(db)  # the notebook's connection, open throughout
    con.execute("SET threads = 3")  # one setting the user chose, the others DuckDB's defaults

    def settings() -> list[object]:
        return [con.execute("SELECT current_setting(?)", [s]).fetchone() for s in SETTINGS]

    before = settings()
    report = resultloader.load(write("f.jsonl", '{"id":"a"}\n{"id":"b"}\n'), db)
    assert report.rows_upserted == 2
    assert settings() == before
    assert con.execute("SELECT count(*) FROM results").fetchone() == (2,)
    con.close()


def _sqlite(path: Path) -> None:
    with sqlite3.connect(path) as lite:
        lite.execute("CREATE TABLE t (x)")


KINDS = {
    "batch.csv": (b"id,output\na,1\n", "not a DuckDB database"),
    "x.jsonl": (b'{"id":"a"}\n', "it looks like JSON or JSONL"),
    "doc.json": (b'[{"id":"a"}]', "it looks like JSON or JSONL"),
    "some.sqlite": (_sqlite, "it is a SQLite database"),
    "blob.bin": (bytes(range(256)) * 4, "its first bytes are not DuckDB's"),
    "empty.duckdb": (b"", "it is empty"),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_into_a_file_that_is_not_a_duckdb_database_is_refused_before_it_is_touched(
    write, tmp_path, name
):
    content, why = KINDS[name]
    target = tmp_path / name
    if callable(content):
        content(target)
    else:
        target.write_bytes(content)
    before = target.read_bytes()
    source = write("f.jsonl", '{"id":"a"}\n')
    out = subprocess.run(
        [SCRIPT, "load", str(source), "--into", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},  # no extension can be found
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and why in out.stderr
    assert "is not a DuckDB database" in out.stderr
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "f.jsonl"])  # no .wal
    with pytest.raises(resultloader.SinkError, match="not a DuckDB database"):
        resultloader.DuckDBSink(target)  # the Python API refuses it as soon as it is named


def test_into_a_directory_is_refused(write, tmp_path):
    with pytest.raises(resultloader.SinkError, match="is a directory"):
        resultloader.load(write("f.jsonl", '{"id":"a"}\n'), tmp_path)


def _limited(*args: str, limit: int = 600 * 2**20) -> subprocess.CompletedProcess[str]:
    """The CLI under an address-space limit, as `prlimit --as` sets it."""
    return _run_limited([SCRIPT, *args], limit)


def _run_limited(command: list[str], limit: int) -> subprocess.CompletedProcess[str]:
    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=limit_address_space
    )


def test_under_a_600mb_address_space_limit_a_load_finishes_or_fails_in_one_line(tmp_path):
    source, db = tmp_path / "rows.jsonl", tmp_path / "r.duckdb"
    source.write_bytes(b"".join(line + b"\n" for line in generate.rows(300_000)))
    # by default the load reserves less and fits its budget to the limit: it usually finishes
    done = _limited("load", str(source), "--into", str(db), "--json")
    if done.returncode == 0:
        assert json.loads(done.stdout)["rows_read"] == 300_000
    else:
        assert_clean_failure(done)
    # more threads and memory than the limit holds: refused up front, before DuckDB starts a
    # thread (past the limit an idle DuckDB worker's first thread-local data aborted the load
    # with glibc's "cannot allocate memory for thread-local data", exit 127, 1 run in 15)
    db.unlink(missing_ok=True)
    failed = _limited("load", str(source), "--into", str(db), "--threads", "8", "--memory", "1GB")
    assert_clean_failure(failed)
    want = "8 threads and a memory budget of 1024MB need 2304MB of address space"
    assert f"{want}, more than its limit of 600MB (ulimit -v)" in failed.stderr
    assert not db.exists()
    # what fits is taken: one thread and the least memory
    fits = _limited("load", str(source), "--into", str(db), "--threads", "1", "--memory", "192MB")
    if fits.returncode != 0:
        assert_clean_failure(fits)
        assert "address space" not in fits.stderr


def test_under_an_address_space_limit_options_that_do_not_fit_are_refused_up_front():
    """The Python API as the CLI: at 1GB, the default budget fits, 3 threads fit, 5 do not."""
    code = (
        "import resultloader\n"
        "budget = resultloader.LoadOptions().budget()\n"
        "print(budget.memory // 2**20, budget.threads)\n"
        "print(resultloader.LoadOptions(threads=3).budget().threads)\n"
        "try:\n"
        "    resultloader.LoadOptions(threads=5)\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    done = _run_limited([sys.executable, "-c", code], 2**30)
    assert done.returncode == 0, done.stderr
    default, three, refused = done.stdout.splitlines()
    memory, threads = map(int, default.split())
    assert memory == 320 and 1 <= threads <= 3  # (1024 - 384) / 2; 3 threads at most fit
    assert three == "3"
    assert refused.startswith("5 threads and a memory budget of 320MB need 1216MB")


def assert_clean_failure(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stderr  # glibc's abort: -6, and "Aborted"
    assert done.stderr.splitlines()[-1].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "Aborted" not in done.stderr

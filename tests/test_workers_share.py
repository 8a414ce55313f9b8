"""--workers N: the parts and the writer share the cores and the memory budget (not timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from resultloader import LoadInfo, LoadOptions
from resultloader._memory import THREAD_MEMORY, Budget, MiB, Share
from resultloader.sinks.duckdb import DuckDBSink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import generate


def test_each_of_four_workers_gets_a_quarter_of_16_threads_and_a_slice_of_the_memory():
    budget = Budget.choose(threads=16)
    part = Share.of(budget, 5, 4)  # four parts and the writer share the memory
    assert part.threads == 4
    assert part.duckdb_memory == budget.duckdb_memory // 5
    assert 4 * part.duckdb_memory + budget.duckdb_memory // 5 <= budget.duckdb_memory
    writer = Share.of(budget, 5, 1)  # every thread its slice holds memory for
    assert writer.duckdb_memory == part.duckdb_memory
    assert writer.threads == writer.duckdb_memory // THREAD_MEMORY


def test_a_share_never_gives_a_thread_less_than_duckdb_needs():
    share = Share.of(Budget.choose(memory="192MB", threads=2), 8, 8)
    assert share.threads == 1 and share.duckdb_memory >= THREAD_MEMORY


def test_a_sink_with_a_share_runs_duckdb_with_its_threads_and_memory(tmp_path):
    db = tmp_path / "part.duckdb"
    sink = DuckDBSink(db, "part")
    sink.share = (5, 4)
    options = LoadOptions(threads=16)
    sink.begin(LoadInfo("x.jsonl", options))
    try:
        # the same file in this process: the same DuckDB instance, so its global settings
        seen = duckdb.connect(str(db))
        threads, limit = seen.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        ).fetchall()[0]
        seen.close()
    finally:
        sink.abort("test")
    assert int(threads) == 4
    want = Share.of(options.budget(), 5, 4).duckdb_memory
    assert abs(_bytes(limit) - want) <= MiB  # DuckDB shows it rounded


def _bytes(text: str) -> int:
    number, unit = text.split()
    return int(float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit])


_LOAD = """
import sys, resultloader
from resultloader import LoadOptions
resultloader.load_many(sys.argv[1], sys.argv[2], LoadOptions(threads=16), workers=4)
"""
_INTERPRETER = "import resultloader, duckdb; duckdb.connect().execute('SELECT 1').fetchall()"


def _peak_rss_mib(*args: str) -> float:
    child = subprocess.Popen([sys.executable, *args])
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss / 1024


def test_four_workers_at_16_threads_stay_inside_the_default_budget(tmp_path):
    for i in range(4):
        lines = (line.replace(b'{"id":"', b'{"id":"f%d_' % i, 1) for line in generate.rows(60_000))
        (tmp_path / f"part{i}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    db = tmp_path / "r.duckdb"
    peak = _peak_rss_mib("-c", _LOAD, str(tmp_path / "*.jsonl"), str(db))
    interpreter = _peak_rss_mib("-c", _INTERPRETER)
    assert peak <= 1.3 * 512 + interpreter  # the benchmark's bound for the default budget
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(DISTINCT id) = count(*) FROM results").fetchall() == [(True,)]

"""Crash safety: `resultloader load` killed (SIGKILL) at random points, interrupted (SIGINT), and
run twice at once. The table always holds the previous state or the complete load, never a part
of one; the ledger says which; a re-run completes the load.

Runs the real CLI in a subprocess on a 200,000-row file. Kill points are seeded random delays
spread over the measured length of a clean run, so they land in start-up, staging and the merge.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import resultloader

ROWS = 200_000
KILLS = 10
CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]


def write_rows(path: Path, ids: range, salt: int) -> None:
    rng = random.Random(salt)
    with path.open("w") as f:
        for i in ids:
            f.write(
                f'{{"id":"k{i}","output":{{"labels":[{{"label":"l{i % 7}"}}],'
                f'"score":{rng.randrange(10**9)}}},"metadata":{{"n":{i}}},'
                f'"url":"https://example.com/{i}","batch":{salt}}}\n'
            )


def checksum(db: Path) -> tuple[int, int]:
    con = duckdb.connect(str(db))
    try:
        row = con.execute(
            "SELECT count(*), coalesce(sum(hash(id, output, metadata, url, extra)), 0) FROM results"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        con.close()


def ledger(db: Path) -> list[str]:
    """Statuses of the ledger rows, oldest first."""
    con = duckdb.connect(str(db))
    try:
        rows = con.execute(
            "SELECT status FROM _resultloader_loads ORDER BY started_at, load_id"
        ).fetchall()
        return [r[0] for r in rows]
    finally:
        con.close()


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.new = root / "new.jsonl"
        self.base = root / "base.duckdb"  # the previous state
        # overlap: 150k ids change, 50k are new, 50k of the old table stay as they are
        write_rows(self.new, range(50_000, 50_000 + ROWS), salt=2)
        previous = root / "previous.jsonl"
        write_rows(previous, range(ROWS), salt=1)
        resultloader.load(previous, self.base)
        self.previous = checksum(self.base)
        full = root / "full.duckdb"
        shutil.copy(self.base, full)
        started = time.monotonic()
        run(self, full).check_returncode()
        self.seconds = time.monotonic() - started  # one clean run, start-up included
        self.complete = checksum(full)
        assert self.complete != self.previous


def run(setup: Setup, db: Path, wait: bool = True) -> subprocess.CompletedProcess[str]:
    proc = start(setup, db)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def start(setup: Setup, db: Path, source: Path | None = None) -> subprocess.Popen[str]:
    tmp = setup.root / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}  # keeps a killed run's scratch files here
    args = [*CLI, "load", str(source or setup.new), "--into", str(db), "--quiet"]
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # a shell's background job inherits SIGINT ignored
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(tmp_path_factory.mktemp("crash"))


def test_sigkill_at_random_points_leaves_previous_or_complete(setup, tmp_path):
    rng = random.Random(20240611)
    db = tmp_path / "work.duckdb"
    shutil.copy(setup.base, db)
    outcomes = []
    for _ in range(KILLS):
        committed_before = ledger(db).count("committed")
        proc = start(setup, db)
        time.sleep(rng.uniform(0.05, setup.seconds * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        state = checksum(db)
        assert state in (setup.previous, setup.complete), "a partial load is visible"
        statuses = ledger(db)
        if state == setup.complete:
            assert statuses.count("committed") == committed_before + 1
            assert statuses[-1] == "committed"
            outcomes.append("complete")
            shutil.copy(setup.base, db)  # start over, so later kills hit a real merge again
        else:
            assert statuses.count("committed") == committed_before
            # a killed load's row says running until the next load marks it abandoned (which
            # that load commits before writing its own row, so a kill between leaves none running)
            assert set(statuses) <= {"committed", "running", "abandoned"}
            assert statuses.count("running") <= 1
            outcomes.append("previous")
    assert "previous" in outcomes  # the kills did land inside loads
    run(setup, db).check_returncode()  # the next run completes it
    assert checksum(db) == setup.complete
    assert ledger(db)[-1] == "committed"


def wait_until_loading(db: Path, proc: subprocess.Popen[str]) -> None:
    """Until the load holds the database: DuckDB starts its write-ahead log when the load
    writes its ledger row (the previous state was checkpointed, so there is none before)."""
    wal = Path(f"{db}.wal")
    for _ in range(6000):
        if wal.exists() or proc.poll() is not None:
            return
        time.sleep(0.005)


def test_sigint_stops_cleanly_and_commits_nothing(setup, tmp_path):
    rng = random.Random(7)
    db = tmp_path / "work.duckdb"
    shutil.copy(setup.base, db)
    assert not Path(f"{db}.wal").exists()
    proc = start(setup, db)
    wait_until_loading(db, proc)
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # the load had finished before the signal arrived
        assert checksum(db) == setup.complete
        pytest.skip("SIGINT arrived after the commit")
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted: nothing was committed"
    assert checksum(db) == setup.previous
    assert ledger(db)[-1] == "failed"
    run(setup, db).check_returncode()
    assert checksum(db) == setup.complete


def test_two_loads_into_one_file_at_once(setup, tmp_path):
    db = tmp_path / "work.duckdb"
    shutil.copy(setup.base, db)
    first = start(setup, db)
    wait_until_loading(db, first)
    second = run(setup, db)
    first.communicate(timeout=120)
    assert first.returncode == 0
    if second.returncode != 0:
        assert "is in use by another process" in second.stderr
        assert second.stderr.count("\n") == 1  # one line, no traceback
    assert checksum(db) == setup.complete
    assert ledger(db).count("failed") == 0

"""Issue 11 (13, 15) with real processes: SIGTERM stops a load like Ctrl-C, and a full TMPDIR
while spooling a JSON array says which file, where, and how to point it elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.duckdb_files import query

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]


def _sigterm_as_a_fresh_process_has_it() -> None:
    """The CLI's SIGTERM as a service manager starts it: default and not blocked. Ignored or
    blocked, a child inherits it (and the CLI rightly leaves an ignored SIGTERM alone); an
    earlier test's library in this pytest process may have left it so."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_array(path: Path, items: int) -> None:
    with path.open("w") as out:
        out.write("[")
        out.write(",".join(f'{{"id":"{i}","output":"{"x" * 200}{i}"}}' for i in range(items)))
        out.write("]")


def test_sigterm_stops_a_load_like_ctrl_c(tmp_path):
    db, tmp, array = tmp_path / "x.duckdb", tmp_path / "tmp", tmp_path / "big.json"
    tmp.mkdir()
    write_array(array, 100_000)
    data = array.read_bytes()
    env = {**os.environ, "TMPDIR": str(tmp)}
    args = [*CLI, "load", "-", "--format", "json", "--into", str(db), "--quiet"]
    proc = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_sigterm_as_a_fresh_process_has_it,
    )
    assert proc.stdin is not None and proc.stderr is not None
    # half the array on stdin, the rest held back: the load is mid-way, however slow the
    # machine, until the signal (a finished load cannot be told from a stopped one)
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    for _ in range(6000):  # until the array is being spooled and the load holds the database
        if list(tmp.glob("resultloader-*")) and Path(f"{db}.wal").exists():
            break
        assert proc.poll() is None, "the load ended before the signal"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 143, err
    assert err == "terminated: nothing was committed\n"
    assert query(db, "SELECT status, error FROM _resultloader_loads") == [
        ("failed", "terminated (SIGTERM)")
    ]
    assert query(db, "SELECT count(*) FROM results") == [(0,)]
    assert list(tmp.iterdir()) == []  # the temp copy is gone


def test_a_full_tmpdir_names_the_temp_copy_and_tmpdir(tmp_path):
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    array = tmp_path / "big.json"
    write_array(array, 20_000)  # ~4.5 MB, in a 1 MB TMPDIR
    load = shlex.join([*CLI, "load", str(array), "--into", str(tmp_path / "x.duckdb"), "-q"])
    script = f"mount -t tmpfs -o size=1m tmpfs {small} && TMPDIR={small} {load}"
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    if "mount" in proc.stderr and "resultloader" not in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "no space left for the temporary copy of the JSON array" in line
    assert f"{small}/resultloader-" in line and "document.json" in line
    assert f"in {small};" in line and "point TMPDIR at a directory with more room" in line


def test_sigterm_while_waiting_for_a_job_stops_in_one_line(tmp_path):
    """SIGTERM during the status calls (an API that never answers): exit 143, one line, and
    with --json one object saying it was terminated."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    port = listener.getsockname()[1]
    env = {**os.environ, "SAFETYKIT_API_KEY": "sk-test"}
    args = [
        *CLI,
        *("ingest", "safetykit", "--namespace", "ns", "--request-id", "r1", "--json"),
        *("--base-url", f"http://127.0.0.1:{port}", "--into", str(tmp_path / "x.duckdb")),
    ]
    try:
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_sigterm_as_a_fresh_process_has_it,
        )
        conn, _ = listener.accept()  # the status call is under way
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        conn.close()
    finally:
        listener.close()
    assert proc.returncode == 143
    assert err.decode() == "terminated: nothing was committed\n"
    assert json.loads(out)["error"]["kind"] == "Terminated"

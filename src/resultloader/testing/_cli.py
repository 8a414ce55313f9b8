"""The contract's command line in a subprocess, and loads killed mid-way (contract.py)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol


class ContractTarget(Protocol):
    """What a command line run needs of the contract's target."""

    into: str
    table: str
    env: dict[str, str]


CLI = [sys.executable, "-m", "resultloader"]
_PAD = "p" * 200  # half the rows are 3 MB, more than the source's read-ahead buffers (2 MiB)


def write_rows(path: Path, ids: range, salt: int) -> None:
    with path.open("w") as f:
        for i in ids:
            f.write(
                f'{{"id":"k{i}","output":{{"s":{salt},"n":{i}}},"metadata":{{"i":"{_PAD}"}}}}\n'
            )


def cli(target: ContractTarget, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **target.env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def cli_load(target: ContractTarget, source: Path | None) -> subprocess.Popen[bytes]:
    """`resultloader load` in a subprocess; with no source it reads JSONL from its stdin."""
    args = [*CLI, "load", str(source or "-"), "--into", target.into, "--table", target.table]
    return subprocess.Popen(
        [*args, "--format", "jsonl", "-q"],
        env={**os.environ, **target.env},
        stdin=subprocess.PIPE if source is None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def killed_mid_load(target: ContractTarget, data: bytes, rng: random.Random) -> None:
    """Feed the load part or all of `data` through a pipe, then SIGKILL it. Once more than
    the source's read-ahead (2 MiB) is written the load has read from the pipe, so it has
    begun: the kill lands inside it (reading, staging, or with all of it sent, the merge)."""
    proc = cli_load(target, None)
    assert proc.stdin is not None
    sent = int(len(data) * rng.choice([0.8, 1.0]))
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(data[:sent])
        proc.stdin.flush()
        if sent == len(data):
            proc.stdin.close()
    time.sleep(rng.uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

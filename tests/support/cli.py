"""The CLI as a user runs it: the installed console script, in a pipe or on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("resultloader"))
GOOD = (
    '{"id":"a","output":{"x":1},"metadata":{"m":1}}\n{"id":"b","output":null}\n'
    '{"id":"a","output":2}\n'
)


def run(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args],
        cwd=cwd,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_on_a_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal, as in an interactive shell; stdout stays a pipe."""
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [SCRIPT, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=secondary, text=True
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read() if proc.stdout else ""
        return proc.wait(timeout=120), out, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(main)

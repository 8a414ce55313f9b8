"""What a killed load leaves behind, and how the next load clears it.

`kill -9` (or the OOM killer, or a power cut) runs no clean-up: the ledger row stays `running`,
DuckDB's spill files stay in `<database>.tmp/`, and a JSON array's temporary copy stays in
TMPDIR. Each carries the id of the process that made it, so the next load removes only what
belongs to processes that are gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

SPOOL_PREFIX = "resultloader-"
_SPOOL = re.compile(rf"{SPOOL_PREFIX}(\d+)-")
_SPILL = re.compile(r"duckdb_temp_(\d+)_")  # DuckDB names its spill files by process id


def spool_prefix() -> str:
    """The prefix of this process's temporary folders: the next load can tell whose they are."""
    return f"{SPOOL_PREFIX}{os.getpid()}-"


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a reused id counts as running: we then keep its files)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_dead_spools(folder: str | None = None) -> list[str]:
    """Remove the temporary copies (of JSON arrays) of processes that are gone; their paths."""
    return _remove_dead(Path(folder or tempfile.gettempdir()), _SPOOL)


def remove_dead_spill_files(folder: str | os.PathLike[str]) -> list[str]:
    """Remove DuckDB's spill files of processes that are gone, from its temp directory."""
    if not os.fspath(folder):
        return []  # no temp directory: nothing can have spilled
    return _remove_dead(Path(folder), _SPILL)


def _remove_dead(folder: Path, pattern: re.Pattern[str]) -> list[str]:
    removed: list[str] = []
    try:
        entries = list(folder.iterdir())
    except OSError:  # no such folder (nothing ever spilled), or not ours to read
        return removed
    for entry in entries:
        found = pattern.match(entry.name)
        if not found or alive(int(found[1])):
            continue
        # another load may be clearing the same debris: whoever gets there first wins
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(str(entry))
    return removed

"""The memory budget of a load, and DuckDB's threads within it.

A load's memory beyond the interpreter is its chunks in flight (Python and Arrow), DuckDB's
buffers, and, for a top-level JSON array, the connection that reads its temporary copy. The
budget is split between them, and DuckDB's threads follow from its share: a thread needs a few
MiB of it, and more threads than memory for them fail with DuckDB's "Out of Memory".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import resource
from dataclasses import dataclass

import pyarrow as pa

MiB = 2**20
DEFAULT_MEMORY = 512 * MiB
MIN_MEMORY = 192 * MiB  # DuckDB then gets the 64 MiB that loads were tuned with
# Outside DuckDB's buffers, a load holds the chunks in flight and their Arrow lines (about
# eight chunks of 8 MiB at the peak: read ahead, carried, split, staged, left to Python)
OUTSIDE_DUCKDB = 64 * MiB
# The least DuckDB memory a thread needs for the merge. Measured on the benchmark's files: 1M
# rows at 16 threads fail at 61 MiB and pass at 96 MiB; 4M rows at 8 threads fail at 64 MiB,
# at 16 threads pass at 384 MiB. It grows with the rows; 16 MiB a thread leaves room.
THREAD_MEMORY = 16 * MiB
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(size: int | str) -> int:
    """Bytes from 268435456, '256MB', '256 MiB', '1.5G' or '2GB': the one size syntax of every
    option (--memory, --max-bytes, --max-line-bytes and LoadOptions). Units are binary, with or
    without the i (KB = KiB = 1024 bytes, MB = MiB), as --memory always read them: a budget in
    MB then means what the summary and the progress bar count in MiB."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(size), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {size!r} (e.g. 512KB, 256MiB, 1.5GB; KB = KiB = 1024)")
    number, unit = match[1], _UNITS[match[2].upper()]
    return int(number) * unit if number.isdigit() else int(float(number) * unit)


def size_text(size: int) -> str:
    """`size` in the largest binary unit that holds it whole, as parse_size reads it back:
    268435456 -> '256MiB', 1536 -> '1536', 2**30 -> '1GiB'."""
    for unit in ("T", "G", "M", "K"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}iB"
    return str(size)


@dataclass(frozen=True)
class Budget:
    """The memory a load may use beyond the interpreter, and DuckDB's threads within it.

    DuckDB gets what the chunks in flight and the array reader leave; a thread needs
    THREAD_MEMORY of it, so by default the threads are the cores this process may run on,
    capped by the memory.
    """

    memory: int
    threads: int

    @classmethod
    def choose(cls, memory: int | str | None = None, threads: int | None = None) -> Budget:
        total = _default_memory() if memory is None else parse_size(memory)
        if total < MIN_MEMORY:
            least = _mib(MIN_MEMORY)
            raise ValueError(f"memory {_mib(total)} is too small: a load needs at least {least}")
        room = cls(total, 1).duckdb_memory // THREAD_MEMORY
        if threads is None:
            chosen = cls(total, max(1, min(_cores(), room, _threads_in_address_space(total))))
        elif threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        elif threads > room:
            duckdb = threads * THREAD_MEMORY  # duckdb_memory is min(M - 128MB, 7/8 M - 64MB)
            need = max(duckdb + 128 * MiB, (duckdb + OUTSIDE_DUCKDB) * 8 // 7 + MiB)
            need = -(-need // MiB) * MiB
            raise ValueError(
                f"{threads} threads need a memory budget of at least {_mib(need)}, "
                f"not {_mib(total)}: raise the memory or lower the threads"
            )
        else:
            chosen = cls(total, threads)
        if memory is not None or threads is not None:
            chosen.check_address_space()
        return chosen

    @property
    def array_reader_memory(self) -> int:
        """For the connection that reads a top-level JSON array's temp copy (one thread): its
        reader holds two buffers of up to 16 MiB an item, so less than 64 MiB refuses them all."""
        return max(64 * MiB, self.memory // 8)

    @property
    def duckdb_memory(self) -> int:
        return self.memory - OUTSIDE_DUCKDB - self.array_reader_memory

    def check_address_space(self) -> None:
        """Refuse, up front, memory or threads the user asked for that an address-space limit
        cannot hold. Past the limit glibc cannot always fail politely: a DuckDB thread that
        first touches its thread-local data then (an idle worker flushing its allocator's
        cache) aborts the process (exit 127) instead of raising an error."""
        limit = _address_space()
        need = _AS_BASE + self.memory + (self.threads - 1) * THREAD_ADDRESS_SPACE
        if limit is not None and need > limit:
            threads = f"{self.threads} thread" + ("s" if self.threads > 1 else "")
            raise ValueError(
                f"{threads} and a memory budget of {_mib(self.memory)} need "
                f"{_mib(need)} of address space, more than its limit of {_mib(limit)} "
                "(ulimit -v): lower the memory or the threads, or raise the limit"
            )


@dataclass(frozen=True)
class Share:
    """One of several DuckDB instances that run at once within one budget (`--workers N`: N
    parts staged while the writer merges): its slice of DuckDB's memory and of the threads, so
    that more workers neither fight over the cores one process already uses nor outgrow the
    budget."""

    duckdb_memory: int
    threads: int

    @classmethod
    def of(cls, budget: Budget, memory_parts: int, thread_parts: int) -> Share:
        """A `1/memory_parts` slice of the memory and `1/thread_parts` of the threads."""
        memory = budget.duckdb_memory // memory_parts
        # THREAD_MEMORY a thread, as the budget's own threads: DuckDB fails below it
        threads = max(1, min(budget.threads // thread_parts, memory // THREAD_MEMORY))
        return cls(max(memory, THREAD_MEMORY), threads)


def _cores() -> int:
    """The cores this process may run on (a pinned process gets fewer than the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mib(size: int) -> str:
    return f"{size // MiB}MB"


# -- an address-space limit (ulimit -v, prlimit --as) ----------------------------------------
# Reserved address space counts against it, not only memory in use: glibc reserves 64 MiB an
# arena (up to 8 a core), Arrow's mimalloc about 1 GiB, each thread 8 MiB of stack. Without a
# limit that costs nothing; under one, a load reserves less, fits its budget and threads in
# what is left (refusing more than the user asks for: Budget.check_address_space), and fails
# with a MemoryError rather than glibc's abort.
_AS_BASE = 384 * MiB  # the interpreter, DuckDB and Arrow mapped, under the measures below
# Each DuckDB thread beyond the first: its stack (8 MiB reserved), its allocator's arenas and
# its thread-local data (about 28 KiB in _duckdb, allocated when the thread first uses it)
THREAD_ADDRESS_SPACE = 128 * MiB
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _address_space() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def _default_memory() -> int:
    limit = _address_space()
    if limit is None:
        return DEFAULT_MEMORY
    return max(MIN_MEMORY, min(DEFAULT_MEMORY, (limit - _AS_BASE) // 2 // MiB * MiB))


def _threads_in_address_space(memory: int) -> int:
    limit = _address_space()
    if limit is None:
        return 1024
    return 1 + max(0, (limit - _AS_BASE - memory) // THREAD_ADDRESS_SPACE)


def reserve_less() -> None:
    """Run once at import. libgcc_s is loaded up front: glibc loads it to unwind a thread,
    and if that load fails for lack of address space it aborts the process."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libgcc_s.so.1")
    if _address_space() is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 1)
    pa.set_memory_pool(pa.system_memory_pool())


reserve_less()

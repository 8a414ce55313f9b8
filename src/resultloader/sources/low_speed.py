"""The low-speed limit of a download, as curl's `--speed-limit`/`--speed-time`: a transfer that
stays below N bytes a second for T seconds is cut, and the download resumes where it stopped.

A server that trickles a byte now and then never trips the read timeout, and would hold a load
for the whole download deadline (6 hours). What counts is the time spent inside reads, not the
time the consumer takes between them (a sink writing a batch is not a slow server). The bytes a
read receives are seen only when it returns, so a read never asks for more than the bytes the
window still needs: while one is blocked, fewer than N·T bytes have arrived, and once the time
spent reading passes T the server is slower than N. A blocked read is not where the reader can
look: a watching thread cuts the connection, and the read fails.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any


class LowSpeed:
    """One download's watch: its reads go through `read`, and `cut` (a method of the reader)
    is called from the watching thread when the window's reading time passes `seconds` before
    it has `limit * seconds` bytes. `restart` after a new connection; `close` at the end (a
    reader never closed is freed all the same: the watch holds its method weakly, and ends
    with it)."""

    def __init__(self, limit: float, seconds: float, cut: Callable[[], None]) -> None:
        self.limit, self.seconds = limit, seconds
        self.need = max(1, int(limit * seconds))  # the bytes of one window
        self.fired = False  # the watch cut the current connection
        self._cut = weakref.WeakMethod(cut)
        self._lock = threading.Lock()
        self._got, self._spent = 0, 0.0  # the window's bytes and reading time so far
        self._since: float | None = None  # when the read in progress began
        self._stop = threading.Event()
        watch = threading.Thread(target=self._watch, name="resultloader-low-speed", daemon=True)
        watch.start()

    def describe(self) -> str:
        return f"the download was slower than {self.limit:,.0f} bytes/s for {self.seconds:g}s"

    def read(self, raw: Any, buffer: Any) -> int:
        """`raw.readinto` of no more than the window still needs, timed."""
        piece = memoryview(buffer)[: max(1, min(len(buffer), self.need - self._got))]
        with self._lock:
            self._since = time.monotonic()
        received = 0
        try:
            received = int(raw.readinto(piece))
        finally:
            self._count(received)
        return received

    def _count(self, received: int) -> None:
        with self._lock:
            if self._since is not None:
                self._spent += time.monotonic() - self._since
            self._since = None
            self._got += received
            if self._got >= self.need:  # fast enough: the next window begins
                self._got, self._spent = 0, 0.0

    def restart(self) -> None:
        """A new connection: a new window."""
        with self._lock:
            self._got, self._spent, self._since, self.fired = 0, 0.0, None, False

    def close(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            cut = self._cut()
            if cut is None:
                return  # the reader is gone
            with self._lock:
                if self._since is None or self.fired:
                    continue
                if self._spent + time.monotonic() - self._since > self.seconds:
                    self.fired = True
                    cut()
            del cut

"""FakeClock: time for `PollPolicy` that nothing waits on, so tests of polling never sleep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from .._http import Clock
from ..providers.poll import PollPolicy


class FakeClock:
    """`sleep` advances the clock at once and records how long was asked (`sleeps`);
    `monotonic` is the time slept so far, `now` the wall time `start` plus it.

    >>> clock = FakeClock()
    >>> resultloader.ingest("pulse", job_id, sink, poll=clock.policy(timeout=60))
    >>> clock.sleeps                                   # what polling asked to wait, in seconds
    """

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)) -> None:
        self.start = start
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    @property
    def clock(self) -> Clock:
        return Clock(sleep=self.sleep, monotonic=self.monotonic, now=self.now)

    def policy(self, **options: Any) -> PollPolicy:
        """A PollPolicy on this clock (`timeout`, `interval`... as PollPolicy takes them)."""
        return PollPolicy(clock=self.clock, **options)

"""Waiting for a job to end: the loop only (the status calls are providers/_client.py's).

Between status checks the wait grows exponentially with jitter, from a floor to a cap, within an
overall timeout. Time is injectable (`Clock`), so tests neither sleep nor depend on the
machine's speed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import WAIT_LONGER, PollError
from .._http import Clock

if TYPE_CHECKING:
    from .base import Provider, State

__all__ = ["Clock", "JobStatus", "PollPolicy", "next_delay", "wait_for"]


@dataclass(frozen=True)
class PollPolicy:
    """How to wait. `interval` and `max_interval` default to the provider's guidance
    (SafetyKit: 3 to 10 s); `timeout` bounds the whole wait (seconds). `wait=False` checks once
    (NotReady if the job still runs); `concurrency` is how many jobs `ingest_many` polls at once."""

    interval: float | None = None
    max_interval: float | None = None
    timeout: float = 3600.0
    factor: float = 1.5
    clock: Clock = field(default_factory=Clock)
    wait: bool = True
    concurrency: int = 8

    def __post_init__(self) -> None:
        for name in ("interval", "max_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be 1 or more, not {self.concurrency}")

    def bounds(self, provider: Provider) -> tuple[float, float]:
        floor = self.interval if self.interval is not None else provider.poll_floor
        cap = self.max_interval if self.max_interval is not None else provider.poll_cap
        return floor, max(floor, cap)


def next_delay(attempt: int, floor: float, cap: float, factor: float, rng: random.Random) -> float:
    """Seconds before status check number `attempt + 1`: exponential, jittered, in [floor, cap].

    The jitter keeps many waiting loaders from polling in lockstep.
    """
    ceiling = min(cap, floor * factor**attempt)
    return rng.uniform(max(floor, ceiling / 2), ceiling)


@dataclass(frozen=True)
class JobStatus:
    """One status check, as shown while waiting."""

    provider: str
    job: str
    status: str
    state: State
    counts: Mapping[str, int] | None
    checks: int
    elapsed: float

    def line(self) -> str:
        text = f"{self.provider} {self.job}: {self.status}"
        if self.counts:
            total = self.counts.get("total")
            done = self.counts.get("succeeded")
            parts = [f"{done:,}/{total:,} done"] if done is not None and total else []
            parts += [
                f"{v:,} {k}" for k, v in self.counts.items() if k not in ("total", "succeeded")
            ]
            text += f" ({', '.join(parts)})"
        return f"{text} after {self.elapsed:.0f}s"


def wait_for(
    check: Callable[[int, float], tuple[dict[str, Any], JobStatus]],
    policy: PollPolicy,
    bounds: tuple[float, float],
    what: str,
    on_status: Callable[[JobStatus], None] | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Check the status until the job ends; the final payload. `check(n, elapsed)` is one check."""
    clock, rng = policy.clock, rng or random.Random()
    floor, cap = bounds
    started = clock.monotonic()
    attempt = 0
    while True:
        attempt += 1
        payload, status = check(attempt, clock.monotonic() - started)
        if on_status is not None:
            on_status(status)
        if status.state != "running":
            return payload
        left = policy.timeout - (clock.monotonic() - started)
        if left <= 0:
            raise PollError(
                f"{what} is still {status.status!r} after {policy.timeout:g}s; it keeps running "
                f"on the API's side: ingest it again later, or {WAIT_LONGER}"
            )
        clock.sleep(min(next_delay(attempt - 1, floor, cap, policy.factor, rng), left))

"""The one HTTP layer under polling and downloading: one retry policy, one session class.

Status calls (providers/_client.py) and downloads (_download.py) both use `Retry` and
`guarded_session`. They retry the same statuses; they differ only in how many times and how long
(a waiting loop rides out a minute of outage, a download gives up sooner and resumes instead),
and a status call's waits go through the injectable `Clock` within the overall timeout
(`TimeLeft`). Where URLs may lead is _urls.py's rule, checked on every hop by its adapter.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry as _Urllib3Retry

from ._errors import PollError
from ._redact import first_line
from ._urls import GuardedAdapter, UrlRule

if TYPE_CHECKING:
    from typing_extensions import Self
    from urllib3 import BaseHTTPResponse

log = logging.getLogger("resultloader")
# a library stays silent unless the application configures logging (the CLI shows these lines)
log.addHandler(logging.NullHandler())

# Transient answers, for status calls and downloads alike: 408 and 429, 409 (a resource being
# written; S3 answers it only to writes, so it costs a download nothing), 5xx and Anthropic's
# 529 (overloaded). Other 4xx are final.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Clock:
    """The time functions polling uses; tests pass fakes so that nothing really sleeps."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utcnow  # wall time, for link expiry


class TimeLeft:
    """The time left before the overall timeout, shared by the poll loop and the retries."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.deadline: float | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock.monotonic()

    def sleep(self, seconds: float, asked: bool = False) -> None:
        left = self.remaining()
        if asked and left is not None and seconds > left:
            raise PollError(
                f"the API asks to wait {seconds:.0f}s before retrying (Retry-After), more than "
                f"the {max(left, 0):.0f}s left before the timeout; try again later"
            )
        if seconds > 0:
            self.clock.sleep(seconds if left is None else max(0.0, min(seconds, left)))


class Gate:
    """One backoff shared by every client of one API (the jobs of `ingest_many`): after a 429,
    no request goes out, from any of them, before the time the API asked for. Rate limits are
    per key, not per job: were each job to wait alone, the others would keep hitting the limit.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._until = 0.0  # on the clock's monotonic time
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """Close the gate for `seconds` from now (never shortening a longer hold)."""
        with self._lock:
            self._until = max(self._until, self.clock.monotonic() + seconds)

    def wait(self, time_left: TimeLeft | None = None) -> None:
        """Until the gate opens; within the time left, when there is one."""
        while True:
            with self._lock:
                closed = self._until - self.clock.monotonic()
            left = time_left.remaining() if time_left is not None else None
            if closed <= 0 or (left is not None and left <= 0):
                return
            self.clock.sleep(closed if left is None else min(closed, left))


class Retry(_Urllib3Retry):
    """urllib3's Retry, with: `max_wait`, a cap on the wait a server may ask for (urllib3 < 2.5
    has none); `time_left`, sleeps through an injectable clock and no retry once the overall
    timeout has passed; `gate`, a 429 holds every client sharing it; and a log line for each
    connection retry."""

    max_wait: float | None = None
    time_left: TimeLeft | None = None
    gate: Gate | None = None

    def new(self, **kw: Any) -> Self:
        fresh = super().new(**kw)
        fresh.max_wait, fresh.time_left, fresh.gate = self.max_wait, self.time_left, self.gate
        return fresh

    def parse_retry_after(self, retry_after: str) -> float:
        asked = super().parse_retry_after(retry_after)
        return asked if self.max_wait is None else min(asked, self.max_wait)

    def is_exhausted(self) -> bool:
        """No retry once the overall timeout has passed (the last failure is raised)."""
        left = self.time_left.remaining() if self.time_left is not None else None
        return super().is_exhausted() or (left is not None and left <= 0)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        time_left = self.time_left
        if time_left is None:
            super().sleep(response)
            return
        asked = None
        if self.respect_retry_after_header and response is not None:
            asked = self.get_retry_after(response)
        seconds = self.get_backoff_time() if asked is None else asked
        if self.gate is not None and response is not None and response.status == 429:
            self.gate.hold(seconds)  # the other jobs wait as long as this one
        time_left.sleep(seconds, asked=asked is not None)
        if self.gate is not None:
            self.gate.wait(time_left)  # another job's 429 since, with a longer wait

    def increment(self, *args: Any, **kw: Any) -> Self:
        fresh = super().increment(*args, **kw)
        error = kw.get("error")
        if error is not None and self._is_connection_error(error):  # else: no retry seen
            host = getattr(kw.get("_pool"), "host", None) or "the server"
            wait = fresh.get_backoff_time()
            attempt = len(fresh.history)
            of = f" of {attempt + fresh.connect}" if isinstance(fresh.connect, int) else ""
            log.warning(
                "cannot connect to %s (%s); retry %d%s%s",
                host,
                connect_reason(error),
                attempt,
                of,
                f" in {wait:.1f}s" if wait >= 0.05 else "",
            )
        return fresh


def connect_reason(error: BaseException) -> str:
    """`Connection refused`, `Name or service not known`: the OS's words, from the end of
    urllib3's chain of wrapped errors, or the error's own first words."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    return found[-1].strip() if found else first_line(error)[:200]


class Session(requests.Session):
    """Drops the caller's secret headers on a redirect to another host, as requests does for
    `Authorization` only (not `x-api-key`): a key meant for one host must not follow a
    redirect elsewhere."""

    def __init__(self, sensitive: Iterable[str]) -> None:
        super().__init__()
        self.sensitive = {name.lower() for name in sensitive}

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        url = prepared_request.url
        if self.should_strip_auth(response.request.url, url):  # type: ignore[no-untyped-call]
            for name in list(prepared_request.headers):
                if name.lower() in self.sensitive:
                    del prepared_request.headers[name]


def guarded_session(
    retry: Retry, sensitive: Iterable[str], rule: UrlRule | None, max_redirects: int = 30
) -> Session:
    """A session with `retry` on every request; with a URL `rule`, every hop is checked."""
    session = Session(sensitive)
    session.max_redirects = max_redirects
    adapter = (
        HTTPAdapter(max_retries=retry) if rule is None else GuardedAdapter(rule, max_retries=retry)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

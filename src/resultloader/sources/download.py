"""Resilient HTTP downloads: retries, resuming a dropped connection, refreshing an expired link.

Requests are made through a requests Session (by smart_open's http transport when a resume needs
a Range request) whose urllib3 `Retry` retries connect errors and transient statuses (_http.py's
one policy, honouring `Retry-After`, capped). A connection that drops mid-body is handled here,
one level up: the stream is reopened at the byte it stopped at, with a Range request when the
server honours ranges, else from the start, discarding the bytes already delivered. This happens
below any decompressor, so a gzip stream continues seamlessly. So does a connection cut for
being too slow (low_speed.py): a server trickling bytes is left for a fresh connection, as
curl's `--speed-limit` does.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from .._errors import DownloadError
from .._http import RETRY_STATUSES, Retry, connect_reason, guarded_session, log
from .._redact import first_line
from .._urls import UrlRule
from .low_speed import LowSpeed

__all__ = ["HttpPolicy", "HttpReader", "Refresh", "connect_reason", "download_session"]

Refresh = Callable[[], str]
"""Returns a fresh URL for the same file, e.g. by asking the API's status endpoint again."""

# Failures of the connection, not of the request: worth reopening at the same byte.
TRANSIENT: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionError,
    TimeoutError,
)
_REFRESH_STATUSES = frozenset({401, 403, 410})
_SKIP_PIECE = 1 << 20
# a connection that delivers this much after a reopening counts as recovered: the resume budget
# starts again (a link that drops every few bytes still fails, as failures in a row)
_PROGRESS_BYTES = 1 << 20
_sleep = time.sleep  # between resumes; tests replace it


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and bounds for one download. Every loop is bounded: a load never hangs."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 5  # per request, for connect errors and _http.RETRY_STATUSES
    backoff: float = 0.5  # seconds, doubled per retry (urllib3's backoff_factor)
    max_retry_wait: float = 120.0  # a longer Retry-After is cut to this
    max_resumes: int = 5  # reopenings in a row, without 1 MiB between, after a drop
    max_refreshes: int = 3  # fresh URLs asked for after 401/403/410
    max_redirects: int = 5
    # seconds for the whole download, resumes included: a server trickling bytes cannot hold a
    # load forever (a reading that blocks ends at read_timeout, so the overshoot is at most that)
    deadline: float | None = 6 * 3600.0
    # curl's low-speed limit: a connection that stays below `low_speed_limit` bytes/s for
    # `low_speed_time` seconds of reading is cut, and the download resumes (a Range request),
    # as a dropped one does, within max_resumes. 0 turns it off.
    low_speed_limit: float = 1024.0
    low_speed_time: float = 60.0
    # where a URL from an API's answer, and every redirect, may lead (_urls.py); None: a URL
    # the user gave, followed wherever it redirects (but never to a local file)
    url_rule: UrlRule | None = None
    # ingest: URLs in the API's answers may point at loopback, private and link-local
    # addresses (else only if the API's base URL is itself such an address)
    allow_local_urls: bool = False


def download_session(policy: HttpPolicy, sensitive: Iterable[str] = ()) -> requests.Session:
    retry = Retry(
        total=policy.retries,
        # a host that refuses connections or does not resolve is rarely back within seconds:
        # two retries (1 s, each shown), then a one-line error, not 15 s of silence
        connect=min(policy.retries, 2),
        read=policy.retries,
        status=policy.retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=policy.backoff,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response comes back, so the error names its status
    )
    retry.max_wait = policy.max_retry_wait
    session = guarded_session(retry, sensitive, policy.url_rule, policy.max_redirects)
    session.hooks["response"].append(_keep_error_body)
    return session


def _keep_error_body(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """smart_open closes a failed response before raising: keep the start of its body, which
    tells an expired presigned link (S3's `Request has expired`) from other refusals."""
    if response.status_code >= 400:
        try:
            body = response.raw.read(4096, decode_content=True)
        except Exception:  # the reason is a nicety; the status alone still fails the download
            body = b""
        response.rl_error_body = body  # type: ignore[attr-defined]


class HttpReader(io.RawIOBase):
    """A raw byte stream of one URL that survives dropped connections and expired links."""

    def __init__(
        self,
        url: str,
        name: str,
        policy: HttpPolicy,
        headers: dict[str, str] | None = None,
        refresh: Refresh | None = None,
    ) -> None:
        self.url, self.name, self.policy, self._refresh = url, name, policy, refresh
        self._headers = {"Accept-Encoding": "identity", **(headers or {})}
        self._session = download_session(policy, headers or {})
        self._started = time.monotonic()
        self._pos, self._resumes, self._refreshes = 0, 0, 0
        self._resumed_at = 0
        self._inner: Any = None
        self._was_cut = False  # by the deadline or the low-speed watch: the read's end is not EOF
        self._timer = self._arm_deadline()
        self._watch: LowSpeed | None = None
        try:
            self._inner = self._get()
        except BaseException:
            self._disarm()
            self._session.close()
            raise
        if policy.low_speed_limit > 0 and policy.low_speed_time > 0:
            self._watch = LowSpeed(policy.low_speed_limit, policy.low_speed_time, self._cut_off)
        first = self._inner.response
        self.content_type: str | None = first.headers.get("Content-Type")
        length = self._inner.content_length
        self.size: int | None = length if length >= 0 else None
        self._validators = _validators(first)

    # -- io.RawIOBase ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            self._check_deadline()
            try:
                n = self._read_raw(buffer)
            except TRANSIENT as exc:
                self._resume(exc)
                continue
            except requests.HTTPError as exc:  # a follow-up range request was refused
                self._refused(exc)
                continue
            except OSError as exc:  # smart_open: a range answer that does not fit
                if self._was_cut:
                    self._resume(exc)
                    continue
                raise DownloadError(f"{self.name}: read failed: {first_line(exc)}") from None
            short = self._was_cut if self.size is None else self._pos < self.size
            if n == 0 and short:  # not the end of the file: the end of a cut connection
                self._resume(EOFError(f"body ended at byte {self._pos:,} of {self.size or '?'}"))
                continue
            self._pos += n
            if self._pos - self._resumed_at >= _PROGRESS_BYTES:
                self._resumes = 0  # the budget is for failures in a row, not per download
            return n

    def _read_raw(self, buffer: Any) -> int:
        """Straight from urllib3's response into the caller's buffer. smart_open opened the
        response (and seeks it on a resume), but reading through its own buffer copies every
        byte twice more: 0.58 s of CPU for 225 MiB over loopback, against 0.10 s."""
        raw = _raw(self._inner)
        if raw is None:
            return 0
        return self._watch.read(raw, buffer) if self._watch else int(raw.readinto(buffer))

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._disarm()
        self._close_inner()
        self._session.close()
        super().close()

    # -- the deadline --------------------------------------------------------------------------

    def _arm_deadline(self) -> threading.Timer | None:
        """A read that blocks is not where the deadline can be checked (a server trickling
        a byte at a time never trips the read timeout, and one read waits for a whole
        buffer): at the deadline, cut the connection; the read fails, and says why."""
        if self.policy.deadline is None:
            return None
        timer = threading.Timer(self.policy.deadline, self._cut_off)
        timer.daemon = True
        timer.start()
        return timer

    def _cut_off(self) -> None:
        self._was_cut = True
        raw = _raw(self._inner) if self._inner is not None else None
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already: nothing to cut
                sock.shutdown(socket.SHUT_RDWR)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    # -- opening and reopening -----------------------------------------------------------------

    def _get(self, seekable: bool = False) -> Any:
        """One GET of the current URL; 401/403/410 ask for a fresh URL. Through smart_open
        when the answer may have to seek (a resume); else with the session alone, as
        smart_open would: importing smart_open loads every transport it knows (boto3 among
        them), 0.1 s of CPU that a load without a failure need not pay."""
        while True:
            params = {
                "session": self._session,
                "timeout": (self.policy.connect_timeout, self.policy.read_timeout),
                "headers": self._headers,
            }
            try:
                if not seekable:
                    return _Answer.get(self.url, params)
                import smart_open

                return smart_open.open(
                    self.url, "rb", compression="disable", transport_params=params
                )
            except requests.HTTPError as exc:
                self._refused(exc)
            except requests.TooManyRedirects:
                raise DownloadError(
                    f"{self.name}: more than {self.policy.max_redirects} redirects"
                ) from None

    def _refused(self, exc: requests.HTTPError) -> None:
        """Refresh the URL if the server refused it and we can; else fail with the reason."""
        status = exc.response.status_code if exc.response is not None else None
        body = getattr(exc.response, "rl_error_body", b"") or b""
        if status == 412:
            raise DownloadError(
                f"{self.name}: the file changed on the server during the download; load it again"
            ) from None
        can_refresh = self._refresh is not None and self._refreshes < self.policy.max_refreshes
        if status in _REFRESH_STATUSES and can_refresh:
            assert self._refresh is not None
            self._refreshes += 1
            fresh = self._refresh()
            if urlsplit(fresh).netloc != urlsplit(self.url).netloc:
                # headers (an API key) were meant for the old host, not for wherever the new
                # link points: the same rule as for a redirect
                self._headers = {"Accept-Encoding": "identity"}
            self.url = fresh
            return
        raise DownloadError(f"{self.name}: {_status_reason(exc, body)}", status) from None

    def _resume(self, exc: BaseException) -> None:
        """Reopen at the current byte, retrying within the resume budget."""
        watch = self._watch
        slow = watch is not None and watch.fired  # cut by the low-speed watch
        if watch is not None and slow:
            exc = TimeoutError(watch.describe())
        while True:
            self._resumes += 1
            if self._resumes > self.policy.max_resumes:
                raise DownloadError(
                    f"{self.name}: the connection failed {self._resumes} times in a row; "
                    f"gave up at byte {self._pos:,}: {first_line(exc)}"
                ) from None
            if slow:  # say why the download starts again
                tries = f"retry {self._resumes} of {self.policy.max_resumes}"
                log.warning(
                    "%s: %s; reconnecting at byte %s (%s)", self.name, exc, f"{self._pos:,}", tries
                )
            self._check_deadline()
            self._close_inner()
            _sleep(min(self.policy.backoff * 2 ** (self._resumes - 1), 10.0))
            try:
                self._inner = self._reopen_at(self._pos)
                self._resumed_at, self._was_cut = self._pos, False
                if self._watch is not None:
                    self._watch.restart()
                return
            except TRANSIENT as again:
                exc, slow = again, False

    def _reopen_at(self, pos: int) -> Any:
        inner = self._get(seekable=pos > 0)
        self._check_same_file(inner.response)
        if pos == 0:
            return inner
        if inner.seekable():
            try:
                inner.seek(pos)  # a Range request, conditional on this response's validator
                return inner
            except io.UnsupportedOperation:  # the server ignored the range: start over
                inner.close()
                inner = self._get()
            except requests.HTTPError as exc:
                inner.close()
                self._refused(exc)
                return self._reopen_at(pos)
        _skip(inner, pos, self.name)
        return inner

    def _check_same_file(self, response: requests.Response) -> None:
        now = _validators(response)
        for key, before in self._validators.items():
            if now.get(key) not in (None, before):
                raise DownloadError(
                    f"{self.name}: the file changed on the server during the download "
                    f"({key} differs); load it again"
                )

    def _check_deadline(self) -> None:
        limit = self.policy.deadline
        if limit is not None and time.monotonic() - self._started > limit:
            raise DownloadError(
                f"{self.name}: the download took longer than {limit:g}s in all; "
                "raise --download-timeout if the file is really this slow to fetch"
            )

    def _close_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            # closing a broken connection may fail; it is gone either way
            with contextlib.suppress(Exception):
                inner.close()


@dataclass
class _Answer:
    """A GET's streamed response, with what HttpReader reads of smart_open's reader."""

    response: requests.Response | None
    content_length: int

    @classmethod
    def get(cls, url: str, params: dict[str, Any]) -> _Answer:
        session: requests.Session = params["session"]
        response = session.get(
            url, stream=True, headers=params["headers"], timeout=params["timeout"]
        )
        if not response.ok:  # as smart_open does; the session's hook kept the body's start
            response.close()
            response.raise_for_status()
        length = response.headers.get("Content-Length", "")
        return cls(response, int(length) if length.isdecimal() else -1)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


def _raw(inner: Any) -> Any:
    """The urllib3 response under smart_open's reader; None at the end, after a seek to it."""
    return inner.response.raw if inner.response is not None else None


def _skip(inner: Any, pos: int, name: str) -> None:
    """Read and discard the `pos` bytes the pipeline already has (a server without ranges)."""
    left, raw = pos, _raw(inner)
    while left:
        piece = raw.read(min(left, _SKIP_PIECE)) if raw is not None else b""
        if not piece:
            raise DownloadError(
                f"{name}: the file is shorter than before ({pos - left:,} < {pos:,} bytes) "
                "after reconnecting; load it again"
            )
        left -= len(piece)


def _validators(response: requests.Response) -> dict[str, str]:
    """What identifies this version of the file: a restart must see the same."""
    found = {}
    if response.status_code == 200:
        for header in ("ETag", "Last-Modified", "Content-Length"):
            value = response.headers.get(header)
            if value:
                found[header] = value
    return found


def _status_reason(exc: requests.HTTPError, body: bytes) -> str:
    response = exc.response
    status = response.status_code if response is not None else 0
    text = f"HTTP {status} {response.reason if response is not None else ''}".strip()
    if status in (403, 410) and (b"Request has expired" in body or b"ExpiredToken" in body):
        return f"{text}: the download link has expired; fetch a fresh one and load again"
    if status == 429 or status >= 500:
        return f"{text}, still after retrying; try again later"
    return text

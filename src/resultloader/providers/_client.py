"""Talking to a provider's API: authenticated calls to its base URL, with the one retry policy
and session of _http.py (connection errors and transient statuses retried, `Retry-After`
honoured, within the overall timeout). The polling loop is _poll.py's; neither imports the other.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from .._errors import PollError
from .._http import RETRY_STATUSES, Clock, Gate, Retry, TimeLeft, guarded_session
from .._redact import redact
from .._urls import RefusedUrl, UrlRule, check_base_url, rule_for_api
from ..parse._rows import decode_exact
from .base import Job, Provider, error_text
from .location import same_origin

_USER_AGENT = "resultloader (+https://pypi.org/project/resultloader/)"
# The most of an answer read into memory: a status (SafetyKit and Pulse send results of 5 MB
# and more as a link, not inline), or an error page, of which only the start is quoted.
MAX_STATUS_BYTES = 64 * 2**20
_MAX_ERROR_BYTES = 64 * 2**10
_PIECE = 1 << 16


class ApiClient:
    """Authenticated GETs to one provider's API. The key is never shown: not in the repr,
    not in errors (which are scrubbed of it, should an API echo it), not in logs."""

    def __init__(
        self,
        provider: Provider,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        clock: Clock | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        allow_local_urls: bool = False,
        gate: Gate | None = None,
    ) -> None:
        self.provider = provider
        self.gate = gate  # a backoff shared with other clients of the API (ingest_many)
        base = base_url or os.environ.get(provider.base_url_env) or provider.base_url
        self.base_url = check_base_url(base.rstrip("/"), provider.name)
        # the status endpoint's redirects and the download URLs in its answers
        self.url_rule: UrlRule = rule_for_api(self.base_url, allow_local_urls)
        key, self._header, self._prefix = _credential(provider, api_key)
        self._key = key.strip() if key else None  # a key read from a file ends in a newline
        self.time_left = TimeLeft(clock or Clock())
        self.timeout = timeout
        self.session = self._session()

    def __repr__(self) -> str:
        return f"ApiClient({self.provider.name!r}, base_url={self.base_url!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def _session(self) -> requests.Session:
        retry = Retry(
            # a server error is waited out for about a minute (0, 1, 2, 4, 8, 16, 30 s), so a
            # short outage does not end an hours-long wait; a wrong host fails within seconds
            total=8,
            connect=3,
            read=2,
            status=7,
            status_forcelist=RETRY_STATUSES,
            # POST only carries GraphQL reads (Shopify's status query): safe to repeat
            allowed_methods=frozenset({"GET", "POST"}),
            backoff_factor=0.5,
            backoff_max=30.0,
            backoff_jitter=0.5,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer comes back, so the error can quote it
        )
        retry.time_left = self.time_left  # waits through the clock, within the overall timeout
        retry.gate = self.gate
        headers = [self.provider.auth_header]
        headers += [c.header for c in self.provider.other_credentials]
        return guarded_session(retry, headers, self.url_rule)

    # -- auth ----------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        if not self._key:
            raise PollError(f"{self.provider.name}: no API key: set {self.key_names}")
        if not self._key.isprintable() or any(c.isspace() for c in self._key):
            # requests would refuse the header with the key in its message
            raise PollError(
                f"{self.provider.name}: the API key contains spaces or control characters; "
                f"check {self.key_names}"
            )
        return {**self.provider.headers, self._header: f"{self._prefix}{self._key}"}

    @property
    def key_names(self) -> str:
        """The variables a key may come from: `OPENAI_API_KEY`, `A or B`."""
        names = [self.provider.key_env, *(c.env for c in self.provider.other_credentials)]
        return " or ".join(names)

    def same_origin(self, url: str) -> bool:
        return same_origin(url, self.base_url)

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    def scrub(self, text: str) -> str:
        text = redact(text)
        return text.replace(self._key, "***") if self._key else text

    # -- requests ------------------------------------------------------------------------------

    def get(self, path: str, what: str) -> requests.Response:
        """GET `path` on the API, after transport retries; any status comes back."""
        headers = {**self.auth_headers(), "Accept": "application/json", "User-Agent": _USER_AGENT}
        self._through_gate()
        url, timeouts = self.base_url + path, self._timeouts()
        try:
            response = self.session.get(url, headers=headers, timeout=timeouts, stream=True)
        except RefusedUrl as exc:  # a redirect of the status endpoint
            raise PollError(f"{what}: {exc}") from None
        except requests.RequestException as exc:
            raise PollError(f"{what}: cannot reach {self.base_url}: {_why(exc)}") from None
        self._read_body(response, what, timeouts[1])
        return response

    def _through_gate(self) -> None:
        if self.gate is not None:
            self.gate.wait(self.time_left)

    def _timeouts(self) -> tuple[float, float]:
        """Connect and read timeouts, within what is left of the overall timeout."""
        left = self.time_left.remaining()
        if left is None:
            return self.timeout
        bound = max(left, 1.0)  # (a retry is not started once no time is left)
        return min(self.timeout[0], bound), min(self.timeout[1], bound)

    def _read_body(self, response: requests.Response, what: str, seconds: float) -> None:
        """Read the answer into memory, bounded in size and in time (the read timeout, for
        the whole body), so that an answer that never ends cannot exhaust memory or hold the
        ingest."""
        limit = MAX_STATUS_BYTES if response.status_code < 300 else _MAX_ERROR_BYTES
        stop = time.monotonic() + seconds
        pieces: list[bytes] = []
        size = 0
        with response:
            try:
                while size <= limit:
                    piece = response.raw.read(_PIECE, decode_content=True)
                    if not piece:
                        break
                    pieces.append(piece)
                    size += len(piece)
                    if time.monotonic() > stop:
                        raise PollError(
                            f"{what}: the answer was still arriving after {seconds:g}s "
                            "(the read timeout, or what was left of --timeout)"
                        )
            except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                raise PollError(f"{what}: reading the answer failed: {_why(exc)}") from None
        if size > limit and response.status_code < 300:
            raise PollError(
                f"{what}: the API's answer is larger than {limit // 2**20} MiB, more than a "
                "status payload holds; not read"
            )
        response._content = b"".join(pieces)[:limit]  # what .content, .text and .json() read

    def get_json(self, path: str, what: str) -> dict[str, Any]:
        return self.decode(self.get(path, what), what)

    def post_json(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        """POST a JSON query (a GraphQL read) to `path`; its JSON object answer."""
        headers = {**self.auth_headers(), "Accept": "application/json", "User-Agent": _USER_AGENT}
        self._through_gate()
        try:
            response = self.session.post(
                self.base_url + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise PollError(
                f"{what}: cannot reach {self.base_url}, still after retrying: {_why(exc)}"
            ) from None
        return self.decode(response, what)

    def decode(self, response: requests.Response, what: str) -> dict[str, Any]:
        """The JSON object of a 2xx answer (numbers kept exactly), else a PollError."""
        with response:
            if response.status_code >= 300:
                raise PollError(self._refusal(response, what))
            try:
                value = decode_exact(response.content)
            except ValueError:
                raise PollError(
                    f"{what}: the API answered with something that is not JSON"
                ) from None
        if not isinstance(value, dict):
            raise PollError(f"{what}: the API answered with JSON that is not an object")
        return value

    def _refusal(self, response: requests.Response, what: str) -> str:
        code, name = response.status_code, self.provider.name
        said = _api_message(response)
        detail = f": {self.scrub(said)}" if said else ""
        if code == 401:
            return f"{name}: the API key is wrong or missing (HTTP 401); check {self.key_names}"
        if code == 403:
            return f"{what}: this API key may not read it (HTTP 403){detail}"
        if code == 404:
            return f"{what}: not found (HTTP 404); check the id{detail}"
        if code == 429 or code >= 500:
            return f"{what}: HTTP {code}, still after retrying; try again later{detail}"
        return f"{what}: HTTP {code}{detail}"


@dataclass(frozen=True)
class ApiAccess:
    """How to reach a provider's API: its key (default: the provider's environment variable,
    such as OPENAI_API_KEY) and its base URL (default: the provider's *_BASE_URL variable, else
    its public API). The key is never shown, not even in a repr."""

    key: str | None = None
    base_url: str | None = None

    def __repr__(self) -> str:
        key = "<given>" if self.key else None
        return f"ApiAccess(key={key}, base_url={self.base_url!r})"


def client_for(
    provider: Provider,
    job: Job,
    access: ApiAccess | None,
    clock: Clock,
    allow_local_urls: bool,
    gate: Gate | None = None,
) -> ApiClient:
    """The client of the job's API: the base URL given, else the environment's, else the
    provider's (Shopify's is the job's shop)."""
    access = access or ApiAccess()
    given = access.base_url or os.environ.get(provider.base_url_env) or None
    base = provider.api_base(job, given)
    return ApiClient(
        provider,
        api_key=access.key,
        base_url=base,
        clock=clock,
        allow_local_urls=allow_local_urls,
        gate=gate,
    )


def _credential(provider: Provider, given: str | None) -> tuple[str | None, str, str]:
    """(secret, header, prefix): the key given, else the key's variable, else the first other
    credential whose variable is set (Azure's Entra ID token)."""
    own = (provider.auth_header, provider.auth_prefix)
    if given is not None:
        return (given, *own)
    if os.environ.get(provider.key_env):
        return (os.environ[provider.key_env], *own)
    for other in provider.other_credentials:
        if os.environ.get(other.env):
            return os.environ[other.env], other.header, other.prefix
    return (None, *own)


def _api_message(response: requests.Response) -> str | None:

    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text[:300].split())
        return text or None
    if isinstance(body, dict):
        return error_text(body)
    return None


def _why(exc: BaseException) -> str:
    """The root of a transport failure in a few words (requests' own text is a paragraph)."""
    text = str(exc)
    if isinstance(exc, requests.ReadTimeout) or "Read timed out" in text:
        return "read timeout: the API took the connection but did not answer in time"
    if isinstance(exc, requests.ConnectTimeout) or "timed out" in text:
        return "connect timeout: no connection in time"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    found = _ERRNO.search(text)
    if found:
        return found.group(1)
    return "connection failed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")

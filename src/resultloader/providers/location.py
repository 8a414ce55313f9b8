"""Where a finished job's results are: inline in the status payload, or behind a download URL.

A resolver turns a status payload into one of these without any I/O; the ingest step then loads
an `Inline` directly and streams a `Download`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from .._errors import DownloadError, ResolveError
from .._mapping import RowMapping
from .._redact import display_name

DownloadFormat = Literal["auto", "jsonl", "json", "csv"]


@dataclass(frozen=True)
class Inline:
    """Result rows carried by the status payload itself (decoded JSON objects).

    `document_id` is set when the rows are one whole result document wrapped as a single row
    with that id (Pulse); the loader then keys it by `id` whatever key the user chose.
    """

    rows: Sequence[Any]
    document_id: str | None = None

    def __repr__(self) -> str:
        return f"Inline({len(self.rows)} rows)"


@dataclass(frozen=True)
class Download:
    """A result file behind a URL.

    `headers` are sent with the download (only ever the API's auth header, and only when the
    URL is on the API's own host); `refresh` returns a fresh Download for the same results when
    the link has expired, where the API allows it. `document_id`: the file is one JSON document
    that lands as a single row with that id (Pulse's `is_url` results).

    A `url` that starts with `/` is a path on the API (OpenAI's `/files/{id}/content`): it is
    joined to the API's base URL when bound, and the key goes with it. `mapping` says how the
    file's lines map to rows; `then` are more files of the same results, loaded after this one
    in the same transaction (OpenAI's error file); `partial`: the job ended badly and these are
    the results it left.
    """

    url: str
    format: DownloadFormat = "auto"
    expires_at: datetime | None = None
    count: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)
    refresh: Callable[[], Download] | None = field(default=None, compare=False)
    document_id: str | None = None
    mapping: RowMapping | None = None
    then: tuple[Download, ...] = ()
    partial: bool = False

    @property
    def on_api(self) -> bool:
        return self.url.startswith("/")

    def __repr__(self) -> str:
        # the URL's query is a presigned signature and the headers hold the API key: neither
        # belongs in a repr, which ends up in logs and tracebacks
        parts = [f"{display_name(self.url)!r}", f"format={self.format!r}"]
        if self.count is not None:
            parts.append(f"count={self.count}")
        if self.expires_at is not None:
            parts.append(f"expires_at={self.expires_at.isoformat()!r}")
        if self.document_id is not None:
            parts.append(f"document_id={self.document_id!r}")
        if self.then:
            parts.append(f"then={list(self.then)!r}")
        if self.partial:
            parts.append("partial=True")
        return f"Download({', '.join(parts)})"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


Location = Inline | Download


def download_url(value: Any, what: str) -> str:
    """A download URL taken from a status payload, checked: https, or http to this machine."""
    from .._urls import check_download_url

    if not isinstance(value, str) or not value:
        raise ResolveError(f"{what}: the status payload has no usable download URL")
    try:
        return check_download_url(value)
    except DownloadError as exc:
        raise ResolveError(f"{what}: {exc}") from None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (`2026-01-15T12:30:00.000Z`) as an aware UTC datetime, else None.

    An unreadable expiry is treated as unknown rather than as expired: the download may still
    work, and a refused one is refreshed anyway.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def same_origin(url: str, base: str) -> bool:
    """Same scheme, host and port: the only case where the API's key may go with a request."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme.lower(), (a.hostname or "").lower(), _port(a.scheme, a.port)) == (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        _port(b.scheme, b.port),
    )


def _port(scheme: str, port: int | None) -> int | None:
    if port is not None:
        return port
    return {"http": 80, "https": 443}.get(scheme.lower())


def as_count(value: Any) -> int | None:
    """A count from a payload (an int, or a number kept as text by the exact decoder)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        return None

"""Open a source as a stream of decompressed bytes: local path, stdin, http(s), s3 and more.

smart_open does the transports; compression is chosen by the first bytes, not the name, because
presigned URLs often have no extension and servers sometimes decompress on the fly.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import sys
from dataclasses import dataclass
from typing import IO, Any, cast
from urllib.parse import urlsplit, urlunsplit

from ._errors import DownloadError

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd")
_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "gcs", "azure", "abfs", "abfss")


def display_name(source: str) -> str:
    """The source as it may appear in errors, reports and the ledger: no query, no credentials.

    Presigned URLs carry their signature in the query string; it is a credential.
    """
    parts = urlsplit(source)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (or a Windows drive letter)
        return source
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def name_hint(source: str) -> str:
    """The file name without compression suffixes, for choosing a format."""
    path = urlsplit(source).path if "://" in source else source
    name = path.rsplit("/", 1)[-1].lower()
    while name.endswith(_COMPRESSED_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    return name


class _Counting(io.RawIOBase):
    """Counts the raw (possibly compressed) bytes read, for progress and the report."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


@dataclass
class Opened:
    """An open source: the decompressed stream and what we know about it."""

    stream: IO[bytes]
    name: str
    size: int | None
    counter: _Counting
    compression: str | None
    content_type: str | None = None

    @property
    def bytes_read(self) -> int:
        return self.counter.count

    def close(self) -> None:
        self.stream.close()


def _open_raw(
    source: str, headers: dict[str, str] | None, timeout: float | None
) -> tuple[IO[bytes], int | None, str | None]:
    if source == "-":
        return sys.stdin.buffer, None, None
    scheme = urlsplit(source).scheme.lower()
    if scheme in _REMOTE_SCHEMES:
        import smart_open

        params: dict[str, Any] = {}
        if scheme in ("http", "https"):
            params = {"headers": {"Accept-Encoding": "identity", **(headers or {})}}
            if timeout is not None:
                params["timeout"] = timeout
        raw = smart_open.open(source, "rb", compression="disable", transport_params=params)
        response = getattr(raw, "response", None)
        size = getattr(raw, "content_length", None)
        if size is None or size < 0:
            size = getattr(raw, "_content_length", None)
        ctype = response.headers.get("Content-Type") if response is not None else None
        return raw, size if isinstance(size, int) and size >= 0 else None, ctype
    if scheme == "file":
        source = urlsplit(source).path
    return open(source, "rb"), os.path.getsize(source), None


def _decompress(buffered: io.BufferedReader[Any], compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    if compression == "bz2":
        return bz2.BZ2File(buffered, mode="rb")
    if compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, 1 << 20)
    return buffered


def open_source(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    headers: dict[str, str] | None = None,
    timeout: float | None = 60.0,
) -> Opened:
    """Open `source` for streaming. `headers` are sent only to http(s) sources."""
    if hasattr(source, "read"):
        raw: IO[bytes] = source  # type: ignore[assignment]
        name, size, ctype = getattr(source, "name", "<stream>"), None, None
        name = name if isinstance(name, str) else "<stream>"
    else:
        text = os.fspath(source)
        name = display_name(text)
        try:
            raw, size, ctype = _open_raw(text, headers, timeout)
        except FileNotFoundError:
            raise DownloadError(f"{name}: no such file") from None
        except OSError as exc:
            raise DownloadError(f"{name}: cannot open: {_reason(exc)}") from None
        except Exception as exc:  # transports raise their own types (requests, botocore)
            raise DownloadError(f"{name}: cannot open: {_reason(exc)}") from None
    counter = _Counting(raw)
    buffered = io.BufferedReader(counter, 1 << 20)
    try:
        magic = buffered.peek(4)[:4]
    except Exception as exc:
        raise DownloadError(f"{name}: cannot read: {_reason(exc)}") from None
    compression = next((kind for m, kind in _MAGIC.items() if magic.startswith(m)), None)
    stream = _decompress(buffered, compression)
    return Opened(stream, name, size, counter, compression, ctype)


def _reason(exc: BaseException) -> str:
    """A one-line reason that never repeats a URL's query string (it may hold a signature)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status} {getattr(response, 'reason', '')}".strip()
    for word in text.split():
        if "://" in word and "?" in word:
            text = text.replace(word, display_name(word.strip("'\"(),")))
    return text

"""Open a source as a stream of decompressed bytes: local path, stdin, http(s), s3 and more.

smart_open does the transports; compression is chosen by the first bytes, not the name, because
presigned URLs often have no extension and servers sometimes decompress on the fly. HTTP(S)
downloads go through `HttpReader` (retries, resume, link refresh); every source is then guarded
so that a broken or oversized compressed stream ends in a DownloadError, never in a partial load.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import sys
import zlib
from dataclasses import dataclass
from typing import IO, Any, cast
from urllib.parse import urlsplit

import requests

from .._errors import DatabaseSource, DownloadError
from .._redact import display_name, first_line
from .._urls import check_download_url as check_download_url  # where the URL rules live
from .download import HttpPolicy, HttpReader, Refresh, connect_reason

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
_DATABASE_MAGIC = (("DuckDB", 8, b"DUCK"), ("SQLite", 0, b"SQLite format 3\0"))
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd")
_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "gcs", "azure", "abfs", "abfss")


def name_hint(source: str) -> str:
    """The file name without compression suffixes, for choosing a format."""
    path = urlsplit(source).path if "://" in source else source
    name = path.rsplit("/", 1)[-1].lower()
    while name.endswith(_COMPRESSED_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    return name


def refuse_databases(sources: list[str]) -> None:
    """Before any source is loaded: a local file among them that is a database (DuckDB,
    SQLite, by its first bytes) is a target given in a source's place, as in `cp SRC DST`.
    Loading the sources before it would commit them into the default target instead."""
    for source in sources:
        kind = _database_kind(source)
        if kind is not None:
            raise DatabaseSource(_nearby(source), kind)


def _database_kind(source: str) -> str | None:
    path = urlsplit(source).path if source.lower().startswith("file://") else source
    if "://" in path or not os.path.isfile(path):  # remote, or not a file (a FIFO would block)
        return None
    try:
        with open(path, "rb") as file:
            head = file.read(16)
    except OSError:
        return None  # the load says what is wrong with it
    found = (kind for kind, at, magic in _DATABASE_MAGIC if head[at : at + len(magic)] == magic)
    return next(found, None)


def _nearby(path: str) -> str:
    """A path under the working directory as a relative one (`target.duckdb`, as typed)."""
    here = os.getcwd() + os.sep
    return os.path.relpath(path) if path.startswith(here) else path


class _Counting(io.RawIOBase):
    """Counts the raw (possibly compressed) bytes read, for progress and the report."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        readinto = getattr(self.raw, "readinto", None)
        if readinto is not None:  # files, HTTP, S3: straight into the buffer, no copy between
            n = int(readinto(buffer) or 0)
        else:  # a caller's stream with read() only
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
    guard: _Guard | None = None  # the decompressed stream, which counts its bytes

    @property
    def bytes_read(self) -> int:
        return self.counter.count

    @property
    def data_bytes(self) -> int:
        """Bytes after decompression (the same as bytes_read for a plain source)."""
        return self.guard.count if self.guard is not None else self.counter.count

    def close(self) -> None:
        self.stream.close()


def _open_raw(
    source: str,
    headers: dict[str, str] | None,
    policy: HttpPolicy,
    refresh: Refresh | None,
) -> tuple[IO[bytes], int | None, str | None]:
    if source == "-":
        return sys.stdin.buffer, None, None
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        reader = HttpReader(source, display_name(source), policy, headers, refresh)
        return cast(IO[bytes], reader), reader.size, reader.content_type
    if scheme in _REMOTE_SCHEMES:
        import smart_open

        raw = smart_open.open(source, "rb", compression="disable")
        size = getattr(raw, "content_length", None)
        return raw, size if isinstance(size, int) and size >= 0 else None, None
    if scheme == "file":
        source = urlsplit(source).path
    return open(source, "rb"), os.path.getsize(source), None


def _decompress(buffered: io.BufferedReader[Any], compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    if compression == "bz2":
        return bz2.BZ2File(buffered, mode="rb")
    if compression == "zstd":
        from .compression import zstd_reader

        return zstd_reader(buffered)
    return buffered


class _Guard(io.RawIOBase):
    """The decompressed stream, with its failures turned into DownloadErrors, and a byte limit.

    A truncated or corrupt compressed file fails the load (nothing committed) instead of
    ending early, and `max_bytes` stops a decompression bomb before it exhausts the disk.
    """

    def __init__(
        self, inner: IO[bytes], name: str, compression: str | None, max_bytes: int | None
    ) -> None:
        self.inner, self.name, self.max_bytes = inner, name, max_bytes
        self.kind = compression or "plain"
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n: int = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        except DownloadError:
            raise
        except EOFError:
            raise DownloadError(
                f"{self.name}: truncated {self.kind} stream: the file ends before its end "
                "marker (an interrupted upload or download?); nothing was loaded"
            ) from None
        except (OSError, zlib.error, ValueError) as exc:
            what = f"corrupt {self.kind} stream" if self.kind != "plain" else "read failed"
            raise DownloadError(f"{self.name}: {what}: {first_line(exc)}") from None
        self.count += n
        if self.max_bytes is not None and self.count > self.max_bytes:
            raise DownloadError(
                f"{self.name}: more than {self.max_bytes:,} bytes after decompression "
                "(a decompression bomb?); raise --max-bytes if the file is really this large"
            )
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_source(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    headers: dict[str, str] | None = None,
    timeout: float | None = 60.0,
    refresh: Refresh | None = None,
    max_bytes: int | None = None,
    policy: HttpPolicy | None = None,
) -> Opened:
    """Open `source` for streaming.

    `headers` are sent only to http(s) sources, and dropped on a redirect to another host.
    `timeout` is the read timeout (seconds without a byte) unless `policy` says otherwise.
    `refresh` returns a fresh URL when the server says the current one expired (401/403/410).
    `max_bytes` limits the decompressed size.
    """
    policy = policy or HttpPolicy(read_timeout=timeout or HttpPolicy.read_timeout)
    name = source_name(source)
    if hasattr(source, "read"):
        raw: IO[bytes] = source  # type: ignore[assignment]
        size, ctype = None, None
    else:
        raw, size, ctype = _open_or_fail(os.fspath(source), name, headers, policy, refresh)
    counter = _Counting(raw)
    buffered = io.BufferedReader(counter, 1 << 20)
    try:
        magic = buffered.peek(4)[:4]
    except DownloadError:
        raise
    except Exception as exc:  # a transport that opens lazily fails at its first read
        raise _refusal(name, exc, "cannot read") from None
    compression = next((kind for m, kind in _MAGIC.items() if magic.startswith(m)), None)
    guard = _Guard(_decompress(buffered, compression), name, compression, max_bytes)
    stream = io.BufferedReader(guard, 1 << 20)
    opened = Opened(stream, name, size, counter, compression, ctype, guard)
    if isinstance(raw, HttpReader):
        _refuse_error_page(opened)
    return opened


def source_name(source: str | os.PathLike[str] | IO[bytes]) -> str:
    """The source as reports, errors and the ledger name it: a URL without its query (a
    signature), a stream by its name."""
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) else "<stream>"
    return display_name(os.fspath(source))


def _open_or_fail(
    text: str,
    name: str,
    headers: dict[str, str] | None,
    policy: HttpPolicy,
    refresh: Refresh | None,
) -> tuple[IO[bytes], int | None, str | None]:
    try:
        return _open_raw(text, headers, policy, refresh)
    except DownloadError:
        raise
    except Exception as exc:  # transports raise their own types (requests, botocore)
        raise _refusal(name, exc, "cannot open") from None


# An object store's error codes (S3's, through botocore): what we say, and the HTTP status
_STORE_REFUSALS = {
    "NoSuchKey": ("no such object", 404),
    "NoSuchVersion": ("no such object", 404),
    "404": ("no such object", 404),
    "NoSuchBucket": ("no such bucket", 404),
    "AccessDenied": ("access denied: check the credentials and the object's permissions", 403),
    "403": ("access denied: check the credentials and the object's permissions", 403),
}


def _refusal(name: str, exc: BaseException, what: str) -> DownloadError:
    """Our words for a source that would not open, whichever exception its transport chose:
    smart_open 7 wraps S3's NoSuchKey in an OSError, smart_open 9 in a FileNotFoundError, and
    both keep botocore's error (its code is the store's answer, not its wording)."""
    refused = _STORE_REFUSALS.get(_store_error_code(exc) or "")
    if refused is not None:
        return DownloadError(f"{name}: {refused[0]}", refused[1])
    if isinstance(exc, FileNotFoundError):
        return DownloadError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return DownloadError(f"{name}: is a directory, not a file")
    return DownloadError(f"{name}: {what}: {_reason(exc)}")


def _store_error_code(exc: BaseException) -> str | None:
    """The error code of a botocore ClientError anywhere in the exception's chain."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; a cycle must not loop forever
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
        backend = getattr(seen, "backend_error", None)  # where smart_open keeps botocore's
        seen = backend if isinstance(backend, BaseException) else seen.__cause__
    return None


def _refuse_error_page(opened: Opened) -> None:
    """A server that answers 200 with an HTML or XML page (a login wall, a proxy's error page)
    has not sent a result file: fail rather than report every line as a bad row."""
    ctype = (opened.content_type or "").split(";")[0].strip().lower()
    try:
        head = opened.stream.peek(256)[:256].lstrip(b"\xef\xbb\xbf \t\r\n")  # type: ignore[attr-defined]
    except DownloadError:
        opened.close()
        raise
    html_type = ctype in ("text/html", "application/xhtml+xml")
    if head.startswith(b"<") or (html_type and not head.startswith((b"{", b"["))):
        opened.close()
        kind = "an XML document" if head.startswith(b"<?xml") else "an HTML page"
        if not head:
            kind = f"an empty {ctype} response"
        raise DownloadError(
            f"{opened.name}: the server sent {kind}, not a result file; check the URL "
            "(has the link expired, or does it need a login?)"
        )


def _reason(exc: BaseException) -> str:
    """A one-line reason that never repeats a URL's query string (it may hold a signature)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status} {getattr(response, 'reason', '')}".strip()
    if isinstance(exc, requests.ConnectionError):  # not urllib3's chain of wrapped errors
        return f"cannot connect: {connect_reason(exc)}"
    return first_line(exc)

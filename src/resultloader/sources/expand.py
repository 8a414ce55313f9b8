"""Many sources: globs expanded (local and s3://) in a stable order, and each source's version.

A source's version says what its content is without reading it: size and ETag (S3, http) or
size and mtime (local files). A re-run of `load_many` skips a source whose version equals the
one recorded in the ledger when it was committed.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from .._errors import DownloadError
from .._redact import display_name, first_line

_WILDCARD = re.compile(r"[*?]")  # `[` is too common in real names to mean a glob


@dataclass(frozen=True)
class Source:
    """One source to load: its name (as the ledger records it) and version, if known."""

    name: str
    version: str | None = None

    @property
    def shown(self) -> str:
        """The name as reports, errors and the ledger show it: no URL query (a signature)."""
        return display_name(self.name)


def is_glob(pattern: str) -> bool:
    """`*` or `?` in a path or s3:// key; an http(s) URL is never a glob (`?` is its query)."""
    scheme = urlsplit(pattern).scheme.lower() if "://" in pattern else ""
    return scheme not in ("http", "https") and bool(_WILDCARD.search(pattern))


def expand(patterns: list[str]) -> list[Source]:
    """Every source the patterns name, in the order given; a glob's matches sorted by name.
    A source named twice is loaded once, at its first place. A glob matching nothing fails."""
    found: list[Source] = []
    seen: set[str] = set()
    for pattern in patterns:
        for source in _expand_one(pattern):
            if source.name not in seen:
                seen.add(source.name)
                found.append(source)
    return found


def _expand_one(pattern: str) -> list[Source]:
    scheme = urlsplit(pattern).scheme.lower() if "://" in pattern else ""
    if pattern == "-":
        return [Source("-")]
    if scheme == "s3":
        return _s3_glob(pattern) if _WILDCARD.search(pattern) else [_s3_one(pattern)]
    if scheme in ("http", "https"):
        return [Source(pattern, _http_version(pattern))]
    if scheme and scheme != "file":
        return [Source(pattern)]  # load() names an unknown scheme
    path = urlsplit(pattern).path if scheme == "file" else pattern
    if not _WILDCARD.search(path):
        return [_local(os.path.abspath(path))]
    matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    if not matches:
        raise DownloadError(f"{pattern}: no file matches")
    return [_local(os.path.abspath(p)) for p in matches]


def _local(path: str) -> Source:
    try:
        stat = os.stat(path)
    except OSError:
        return Source(path)  # the load names what is wrong with it
    return Source(path, f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}")


def _s3_client() -> Any:
    import boto3  # type: ignore[import-untyped]  # smart_open[s3] brings it; the endpoint and keys come from the environment

    return boto3.client("s3")


def _s3_one(url: str) -> Source:
    parts = urlsplit(url)
    try:
        head = _s3_client().head_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
    except Exception:
        return Source(url)  # the load says why it cannot open it
    return Source(url, f"size={head['ContentLength']};etag={head['ETag']}")


def _s3_glob(pattern: str) -> list[Source]:
    """Objects whose key matches: `*` and `?` within one path segment, `**` across them."""
    parts = urlsplit(pattern)
    bucket, key_pattern = parts.netloc, parts.path.lstrip("/")
    prefix = key_pattern[: _WILDCARD.search(key_pattern).start()]  # type: ignore[union-attr]
    matcher = re.compile(_glob_regex(key_pattern))
    found: list[Source] = []
    try:
        pages = _s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if matcher.fullmatch(obj["Key"]):
                    version = f"size={obj['Size']};etag={obj['ETag']}"
                    found.append(Source(f"s3://{bucket}/{obj['Key']}", version))
    except Exception as exc:
        raise DownloadError(f"{display_name(pattern)}: cannot list: {first_line(exc)}") from None
    if not found:
        raise DownloadError(f"{display_name(pattern)}: no object matches")
    return sorted(found, key=lambda s: s.name)


def _glob_regex(pattern: str) -> str:
    """A key glob as a regular expression (fnmatch's `*` would cross `/`)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole segments
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _http_version(url: str) -> str | None:
    """ETag (else Last-Modified) and length from a HEAD request; None if the server gives
    neither (the source is then loaded on every run)."""
    try:
        response = requests.head(url, allow_redirects=True, timeout=30)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
    if not tag:
        return None
    return f"size={response.headers.get('Content-Length', '?')};etag={tag}"

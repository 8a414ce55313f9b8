"""Parsers: pick the format, then stream batches (JSONL chunks or RowBatches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import orjson

from .._errors import ParseError
from .._model import LoadOptions, RowBatch
from ._rows import decode_exact
from .csv import parse_csv
from .json import document_row, parse_json
from .jsonl import JsonlChunk, iter_chunks, parse_chunk

__all__ = ["JsonlChunk", "detect_format", "iter_batches", "parse_chunk"]

_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".json": "json",
    ".csv": "csv",
}
_BY_CONTENT_TYPE = {
    "ndjson": "jsonl",
    "jsonl": "jsonl",
    "json-seq": "jsonl",
    "csv": "csv",
    "json": "json",
}


def detect_format(name: str, content_type: str | None, head: bytes) -> str:
    """Choose jsonl, json or csv from the name, then the content type, then the first bytes."""
    declared = next((f for s, f in _BY_SUFFIX.items() if name.endswith(s)), None)
    if declared is None and content_type:
        ctype = content_type.split(";")[0].strip().lower()
        declared = next((f for k, f in _BY_CONTENT_TYPE.items() if ctype.endswith(k)), None)
    sniffed = _sniff(head)
    if declared == "csv":
        return "csv"
    if sniffed in ("json", "jsonl"):
        return sniffed  # content wins: many APIs name their JSONL files .json
    if declared:
        return declared
    if sniffed == "one-line":
        return "jsonl"
    return "csv" if b"," in head.split(b"\n", 1)[0] else "jsonl"


def _sniff(head: bytes) -> str | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if not text.startswith(b"{"):
        return None
    first, _, rest = text.partition(b"\n")
    if not _is_json(first):
        return "json" if rest else None  # a pretty-printed document, or a line longer than head
    return "jsonl" if rest.strip() else "one-line"


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # orjson refuses some valid JSON, e.g. numbers beyond a double's range
            decode_exact(line)
        except (ValueError, RecursionError):
            return False
    return True


def iter_batches(
    stream: IO[bytes],
    source: str,
    fmt: str,
    options: LoadOptions,
    document_id: str | None = None,
) -> Iterator[JsonlChunk | RowBatch]:
    """Stream `stream` as JSONL chunks (parsed later, maybe by the sink) or RowBatches."""
    if document_id is not None and not options.items_path:
        yield document_row(stream, source, document_id)
    elif fmt == "jsonl":
        yield from iter_chunks(stream, source, options)
    elif fmt == "json":
        yield from parse_json(stream, source, options)
    elif fmt == "csv":
        yield from parse_csv(stream, source, options)
    else:
        raise ParseError(source, 0, 0, f"unknown format {fmt!r}")

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
    if declared == "jsonl" and not (sniffed == "json" and _is_array(head)):
        return "jsonl"  # a .jsonl whose first line is broken is still JSONL, with a bad line 1
    if sniffed in ("json", "jsonl"):
        return sniffed  # content wins: many APIs name their JSONL files .json
    if declared:
        return declared
    if sniffed in ("one-line", "long-line"):
        return "jsonl"  # a minified document should say so by its name or content type
    return "csv" if b"," in head.split(b"\n", 1)[0] else "jsonl"


def _sniff(head: bytes) -> str | None:
    """json, jsonl, one-line (one JSON object), long-line (a `{` line longer than `head`)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith((b"[", b"{")):
        return None
    first, newline, rest = text.partition(b"\n")
    if _is_json(first):
        if rest.strip():
            return "jsonl"  # a whole value on the first line and more lines after it
        return "json" if text.startswith(b"[") else "one-line"
    if newline or text.startswith(b"["):
        return "json"  # a pretty-printed document
    return "long-line"  # never csv, though such a line surely holds commas


def _is_array(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


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
    _refuse_utf16(stream, source)
    if options.items_path and fmt != "json":
        fmt = _items_path_format(source, options)
    if document_id is not None and not options.items_path:
        yield document_row(stream, source, document_id)
    elif fmt == "jsonl":
        yield from iter_chunks(stream, source, options)
    elif fmt == "json":
        yield from parse_json(stream, source, options, as_lines=True)
    elif fmt == "csv":
        yield from parse_csv(stream, source, options)
    else:
        raise ParseError(source, 0, 0, f"unknown format {fmt!r}")


def _items_path_format(source: str, options: LoadOptions) -> str:
    """An items path only means something in a JSON document: with --format auto it says the
    source is one (rather than being ignored); with another explicit format it is a mistake."""
    if options.format == "auto":
        return "json"
    raise ParseError(
        source,
        0,
        -1,
        f"an items path applies to JSON documents, not to {options.format}",
        "Drop --items-path, or use --format json.",
    )


def _refuse_utf16(stream: IO[bytes], source: str) -> None:
    """Windows tools often write UTF-16: say so, rather than call every line invalid JSON."""
    peek = getattr(stream, "peek", None)
    head = peek(2)[:2] if peek else b""
    if head in (b"\xff\xfe", b"\xfe\xff"):
        raise ParseError(
            source,
            1,
            0,
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark)",
            "Convert it to UTF-8, e.g. with iconv -f UTF-16 -t UTF-8.",
        )

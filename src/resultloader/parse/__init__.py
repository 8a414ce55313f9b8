"""Parsers: pick the format, then stream batches (JSONL chunks or RowBatches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import orjson

from .._errors import ITEMS_PATH_FORMAT, ParseError
from .._model import LoadOptions, RowBatch
from ._rows import decode_exact, loads
from ._sniff import sniff_object
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
    ".tsv": "tsv",
    ".tab": "tsv",
}
_BY_CONTENT_TYPE = {
    "ndjson": "jsonl",
    "jsonl": "jsonl",
    "json-seq": "jsonl",
    "csv": "csv",
    "tab-separated-values": "tsv",
    "json": "json",
}


def detect_format(name: str, content_type: str | None, head: bytes, key: str = "id") -> str:
    """Choose jsonl, json or csv from the name, then the content type, then the first bytes."""
    declared = next((f for s, f in _BY_SUFFIX.items() if name.endswith(s)), None)
    if declared is None and content_type:
        ctype = content_type.split(";")[0].strip().lower()
        declared = next((f for k, f in _BY_CONTENT_TYPE.items() if ctype.endswith(k)), None)
    sniffed = _sniff(head, key)
    if declared in ("csv", "tsv"):
        return declared
    if declared == "jsonl" and not (sniffed == "json" and _is_array(head)):
        return "jsonl"  # a .jsonl whose first line is broken is still JSONL, with a bad line 1
    if sniffed in ("json", "jsonl"):
        return sniffed  # content wins: many APIs name their JSONL files .json
    if declared:
        return declared
    if sniffed in ("one-line", "long-line"):
        return "jsonl"  # a minified document should say so by its name or content type
    first = head.split(b"\n", 1)[0]
    return "csv" if b"," in first else "tsv" if b"\t" in first else "jsonl"


def _sniff(head: bytes, key: str) -> str | None:
    """json, jsonl, one-line (one JSON object), long-line (a `{` value longer than `head`)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return sniff_object(text, key)
    if not text.startswith(b"["):
        return None
    first, _, rest = text.partition(b"\n")
    return "jsonl" if _is_json(first) and rest.strip() else "json"


def _is_array(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def _is_json(line: bytes) -> bool:
    try:
        loads(line)
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
    _refuse_binary(stream, source)
    if options.items_path and fmt != "json":
        fmt = _items_path_format(source, options)
    if document_id is not None and not options.items_path:
        yield document_row(stream, source, document_id)
    elif fmt == "jsonl":
        yield from iter_chunks(stream, source, options)
    elif fmt == "json":
        yield from parse_json(stream, source, options, as_lines=True)
    elif fmt in ("csv", "tsv"):
        yield from parse_csv(stream, source, options, options.delimiter or _DELIMITERS[fmt])
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
        ITEMS_PATH_FORMAT,
    )


_DELIMITERS = {"csv": ",", "tsv": "\t"}
# the first bytes of binary formats a user may point the loader at by mistake
_MAGIC = {
    b"PAR1": "Parquet",
    b"SQLite format 3\x00": "SQLite",
    b"PK\x03\x04": "a zip archive",
    b"ORC": "ORC",
    b"Obj\x01": "Avro",
    b"ARROW1": "Arrow",
    b"%PDF": "PDF",
    b"\x89PNG": "PNG",
}


def _refuse_binary(stream: IO[bytes], source: str) -> None:
    """A binary file is no text format: say so, rather than call every line a bad row. Text
    (JSON, CSV) holds no NUL byte; UTF-16, which does, was named already."""
    peek = getattr(stream, "peek", None)
    head = peek(4096)[:4096] if peek else b""
    kind = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None and b"\x00" not in head:
        return
    looks = f" (it looks like {kind})" if kind else " (it holds NUL bytes)"
    raise ParseError(
        source,
        0,
        -1,
        f"not a text format we read{looks}",
        "resultloader reads JSONL, JSON documents, CSV and TSV, plain or gzip, bz2 or zstd.",
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

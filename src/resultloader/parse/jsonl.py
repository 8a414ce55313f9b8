"""JSONL: cut the stream into chunks of whole lines, and parse a chunk into a RowBatch.

A chunk is the unit of work. Sinks that read JSONL natively (DuckDB) take the raw chunk; the rest
get `parse_chunk`'s columns. Either way memory holds one chunk, never the file.
"""

from __future__ import annotations

import dataclasses
from codecs import BOM_UTF8
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from .._errors import ParseError
from .._model import LoadOptions, Reject, RowBatch
from ._rows import (
    NESTED_TOO_DEEPLY,
    add_object,
    decode_exact,
    kind_of,
    line_needs_exact,
    loads,
    may_hold_long_numbers,
)
from ._surrogates import LONE_SURROGATE

CHUNK_BYTES = 8 * 1024 * 1024  # ~35k rows: a statement each; bigger costs memory, smaller time


@dataclass(frozen=True)
class JsonlChunk:
    """Whole lines of a JSONL source. `first_line` is 1-based; `offset` is the byte offset,
    -1 for lines made from a JSON document's items (numbered by item, with no byte offsets).

    `prepared` is what a JSONL-reading sink's `prepare_jsonl` made of the chunk ahead of time,
    in the reading thread (the DuckDB sink splits it into Arrow lines there).
    """

    source: str
    data: bytes
    first_line: int
    offset: int
    prepared: object = field(default=None, compare=False, repr=False)


def iter_chunks(
    stream: IO[bytes], source: str, options: LoadOptions, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[JsonlChunk]:
    """Yield chunks of whole lines.

    `max_line_bytes` is a hard memory guard: a longer line stops the load whatever `on_error`
    says, since it could not be held to be quarantined.
    """
    line, offset, carry = 1, 0, b""
    first = True
    while True:
        # the first read is long enough to hold a whole BOM, even with tiny chunks
        block = stream.read(max(chunk_bytes, len(BOM_UTF8)) if first else chunk_bytes)
        if first:
            first = False
            if block.startswith(BOM_UTF8):
                block, offset = block[len(BOM_UTF8) :], len(BOM_UTF8)
                if not block:  # the BOM was the whole read, not the whole stream
                    continue
        if not block:
            if carry:
                yield JsonlChunk(source, carry, line, offset)
            return
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry += block
            if len(carry) > options.max_line_bytes:
                raise ParseError(
                    source,
                    line,
                    offset,
                    f"line longer than max_line_bytes ({options.max_line_bytes:,} bytes)",
                )
            continue
        # one copy of the chunk's bytes at most: memory holds a few chunks, not the file
        whole = b"".join((carry, memoryview(block)[:cut])) if carry or cut < len(block) else block
        chunk = JsonlChunk(source, whole, line, offset)
        carry = block[cut:]
        line += whole.count(b"\n")
        offset += len(whole)
        yield chunk


def parse_chunk(chunk: JsonlChunk, options: LoadOptions) -> RowBatch:
    """Parse every line of `chunk` into columns; bad lines become rejects with line and offset."""
    batch = RowBatch()
    exact_possible = may_hold_long_numbers(chunk.data)
    offset, key, limit = chunk.offset, options.key, options.max_line_bytes
    for number, line in enumerate(chunk.data.split(b"\n"), chunk.first_line):
        start, offset = offset, offset + len(line) + 1
        if not line or line.isspace():
            continue
        if len(line) > limit:
            _reject(batch, number, start, f"line longer than max_line_bytes ({limit:,})", line)
            continue
        try:
            obj, exact = decode_line(line, exact_possible and line_needs_exact(line))
        except (ValueError, RecursionError) as exc:
            _reject(batch, number, start, why_not_json(exc, line), line)
            continue
        if not isinstance(obj, dict):
            _reject(batch, number, start, f"not a JSON object ({kind_of(obj)})", line)
            continue
        reason = add_object(batch, obj, key, number, exact, options.id_prefix, options.mapping)
        if reason:
            _reject(batch, number, start, reason, line)
    if chunk.offset < 0:
        _as_items(batch, chunk.source, options)
    return batch


def _as_items(batch: RowBatch, source: str, options: LoadOptions) -> None:
    """Lines made from a JSON document's items have no byte offsets, and are named by item."""
    batch.rejects[:] = [dataclasses.replace(r, offset=-1) for r in batch.rejects]
    for reject in batch.rejects:
        # text that is not JSON makes the document not JSON, as ijson finds on the other routes
        if options.on_error == "fail" or not_json(reject.reason):
            raise ParseError(source, 0, -1, f"item {reject.line} of the array: {reject.reason}")


def not_json(reason: str) -> bool:
    """Is this reject's reason that its text is not JSON (rather than not a row)?"""
    return reason.startswith(("invalid JSON", "invalid UTF-8")) and reason != NESTED_TOO_DEEPLY


def decode_line(line: bytes, exact: bool) -> tuple[Any, bool]:
    """One line's value, and whether its numbers are kept as written (RawNumber).

    orjson decides what is JSON (RFC 8259: no NaN, no trailing comma, no lone surrogate), so a
    line's reason is orjson's whichever decoder reads it; the exact decoder then reads the lines
    whose numbers a double would change, and those orjson refuses only for their numbers.
    """
    try:
        obj = loads(line)
    except orjson.JSONDecodeError as exc:
        if "number" not in str(exc):
            raise
        exact = True
    return (decode_exact(line), True) if exact else (obj, False)


def _reject(batch: RowBatch, line: int, offset: int, reason: str, raw: bytes) -> None:
    text = raw.removesuffix(b"\r").decode("utf-8", "replace")  # \r is half of a CRLF ending
    batch.rejects.append(Reject(line, offset, reason, text))


NOT_A_NUMBER = "invalid JSON: NaN and Infinity are not JSON numbers"
_NOT_NUMBERS = (b"nan", b"inf", b"-nan", b"-inf")


def why_not_json(exc: Exception, line: bytes) -> str:
    """The reason a line is refused, in our words, from the decoder's error."""
    at = getattr(exc, "pos", None)
    if isinstance(at, int) and line[at : at + 4].lower().startswith(_NOT_NUMBERS):
        return NOT_A_NUMBER  # orjson words each spelling its own way
    if isinstance(exc, RecursionError) or "depth" in str(exc) or "recursion" in str(exc):
        return "invalid JSON: nested too deeply"
    if isinstance(exc, UnicodeDecodeError) or "utf-8" in str(exc).lower():
        return "invalid UTF-8"
    if "surrogate" in str(exc):  # orjson's three wordings of one fault, as documents say it
        return LONE_SURROGATE
    text = str(exc).split(": line ")[0]
    return text if text.startswith("invalid JSON") else f"invalid JSON: {text}"

"""A JSONL chunk as an Arrow table of lines, for DuckDB's JSON functions to read."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..parse import JsonlChunk
from ._duckdb_sql import _BATCH_ROWS


def split_lines(chunk: JsonlChunk) -> pa.Table | None:
    """The chunk's lines as Arrow strings (validated UTF-8), with their line numbers.

    Lines are numbered as the file numbers them, blank ones included, so `seq` is the line.
    """
    ends = pa.array([0, len(chunk.data)], pa.int64()).buffers()[1]
    whole = pa.LargeBinaryArray.from_buffers(  # the chunk's bytes as one value, not copied
        pa.large_binary(), 1, [None, ends, pa.py_buffer(chunk.data)]
    )
    try:
        text = whole.cast(pa.large_string())  # validates UTF-8
    except pa.ArrowInvalid:
        return None
    pieces = pc.split_pattern(text, "\n").flatten()  # a copy, only to learn where lines end
    count = len(pieces) - chunk.data.endswith(b"\n")
    ordinals = pa.array(range(count + 1), pa.int64())
    # the lines again, over the chunk's own bytes: each keeps its newline, which JSON allows
    lengths = pa.Array.from_buffers(pa.int64(), len(pieces) + 1, [None, pieces.buffers()[1]])
    starts = pc.add(lengths.slice(pieces.offset, count + 1), ordinals)
    starts = pc.min_element_wise(starts, pa.scalar(len(chunk.data), pa.int64()))
    lines = pa.LargeStringArray.from_buffers(
        count, starts.buffers()[1], pa.py_buffer(chunk.data), offset=starts.offset
    )
    table = pa.table(
        {
            "seq": pc.add(ordinals.slice(0, count), chunk.first_line),
            "maybe_inexact": maybe_inexact(chunk.data, count),
            "raw": lines,
        }
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS))


# digits and dots become "0", everything else a space: a long number is a run of "0"s
_NUMBERISH = bytes(ord("0") if c in b"0123456789." else 32 for c in range(256))
_LONG = b"0" * 15


def _token_map() -> bytes:
    """What the suspect scan sees: `:` and `[` (before a value) as `:`, closing brackets
    as `]`, digits as `0`, letters in lower case (`e` for exponents)."""
    table = bytearray(range(256))
    for group, to in ((b":[", b":"), (b"]}", b"]"), (b"0123456789", b"0")):
        for c in group:
            table[c] = to[0]
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = c + 32
    return bytes(table)


_TOKENS = _token_map()
_SPACES = b" \t\r"  # deleted (not newlines, which keep the lines apart)
# What DuckDB's reader accepts or rounds though the exact parser would not: a trailing comma,
# NaN and Infinity in any case and sign, and negative exponents of 3+ digits (DuckDB reads
# 1e-400 as 0.0 and rounds subnormals; 1e400 it keeps as written). By token context, not
# substring: "information" or "finance" inside a string match only after a `,` or `:`, and a
# false alarm only costs Python time.
SUSPECT = (
    b",]",
    *(
        before + sign + word
        for before in (b",", b":")
        for sign in (b"", b"-")
        for word in (b"nan", b"inf")
    ),
    b"e-000",
)


def maybe_inexact(data: bytes, count: int) -> pa.Array:
    """For each line: 2 if it holds text DuckDB's reader would accept or store other than the
    exact parser (`SUSPECT`: always parsed by Python), 1 if it has a run of 15+ digits and dots
    (a number a double may not hold, or a long integer, which the SQL lets through), else 0.
    C-speed: translate and find."""
    marks = bytearray(count)
    _mark(data.translate(_NUMBERISH), data, (_LONG,), marks, 1)
    tokens = data.translate(_TOKENS, _SPACES)
    _mark(tokens, tokens, SUSPECT, marks, 2)
    return pa.Array.from_buffers(pa.uint8(), count, [None, pa.py_buffer(marks)])


def _mark(
    text: bytes, lines: bytes, patterns: tuple[bytes, ...], marks: bytearray, value: int
) -> None:
    """Set `marks[i] = value` for each line `i` of `text` holding one of `patterns`; `lines`
    has the newlines where `text` has them (`text` itself, or what it was translated from)."""
    for pattern in patterns:
        line, counted, at = 0, 0, text.find(pattern)
        while at >= 0:
            line += lines.count(b"\n", counted, at)
            marks[line] = max(marks[line], value)
            end = lines.find(b"\n", at)
            if end < 0:
                break
            line, counted = line + 1, end + 1
            at = text.find(pattern, counted)

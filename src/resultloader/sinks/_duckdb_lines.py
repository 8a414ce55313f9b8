"""A JSONL chunk as an Arrow table of lines, for DuckDB's JSON functions to read."""

from __future__ import annotations

import re

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


def _token_map() -> bytes:
    """What the byte scan sees: `,` as 0x02; `:`, `[` and `-` as 0x01 (what may come before
    a value, or between `e` and an exponent); closing brackets as `]`; digits and dots as `0`;
    letters in lower case. Blanks other than newlines are deleted as well."""
    table = bytearray(range(256))
    for chars, to in ((b":[-", 1), (b",", 2), (b"]}", 0x5D), (b"0123456789.", 0x30)):
        for c in chars:
            table[c] = to
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = c + 32
    return bytes(table)


_TOKENS = _token_map()
_BLANKS = b" \t\r"  # deleted (not newlines, which keep the lines apart)
# What DuckDB's reader accepts or rounds though the exact parser would not (mark 2): NaN and
# Infinity in any case and sign as a value (after `:`, `[`, `,` or `-`), a trailing comma
# (`,]`, `,}`), and negative exponents of 3+ digits (DuckDB reads 1e-400 as 0.0 and rounds
# subnormals; 1e400 it keeps as written). By token context, not substring: "information" or
# "finance" inside a string match only right after one of those marks, and a false alarm
# only costs Python time. Two regexes with a literal first byte run at memchr-like speed,
# where one with a class of first bytes is ten times slower.
_SUSPECT = (
    re.compile(b"\x01(?:nan|inf)"),
    re.compile(b"\x02(?:]|nan|inf)"),
    re.compile(b"e\x01000"),
)
_LONG = re.compile(re.escape(b"0" * 15))  # 15+ digits and dots (mark 1): the SQL's regex decides


def maybe_inexact(data: bytes, count: int) -> pa.Array:
    """For each line: 2 if it holds text DuckDB's reader would accept or store other than the
    exact parser (always parsed by Python), 1 if it has a run of 15+ digits and dots (a
    number a double may not hold, or a long integer, which the SQL lets through), else 0.
    C-speed: one translate, then a few searches over the whole chunk."""
    marks = bytearray(count)
    tokens = data.translate(_TOKENS, _BLANKS)
    _mark(tokens, (_LONG,), marks, 1)
    _mark(tokens, _SUSPECT, marks, 2)
    return pa.Array.from_buffers(pa.uint8(), count, [None, pa.py_buffer(marks)])


def _mark(
    text: bytes, patterns: tuple[re.Pattern[bytes], ...], marks: bytearray, value: int
) -> None:
    """Set `marks[i] = value` for each line `i` of `text` where one of `patterns` matches."""
    for pattern in patterns:
        line, counted, found = 0, 0, pattern.search(text)
        while found:
            line += text.count(b"\n", counted, found.start())
            marks[line] = max(marks[line], value)
            end = text.find(b"\n", found.start())
            if end < 0:
                break
            line, counted = line + 1, end + 1
            found = pattern.search(text, counted)

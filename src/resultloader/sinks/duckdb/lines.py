"""A JSONL chunk as an Arrow table of lines, for DuckDB's JSON functions to read."""

from __future__ import annotations

import re

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ...parse import JsonlChunk
from .sql import _BATCH_ROWS


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
            "maybe_inexact": maybe_inexact(lines),
            "raw": lines,
        }
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS))


# What DuckDB's reader accepts or rounds though the exact parser would not (mark 2): NaN and
# Infinity in any case and sign as a value (after `:`, `[`, `,` or `-`, blanks allowed), a
# trailing comma (`,]`, `,}`), and exponents of 3+ digits (DuckDB reads 1e-400 as 0.0 and
# rounds subnormals; 1e400 it keeps as written, `1E+400` too, where every route stores 1e400).
# The positive ones only where a number starts: a UUID's "550e8400" is no number. By context,
# not substring: "information" or "finance" inside a string match only right after one of
# those marks, and a false alarm only costs Python time.
_BLANKS = "[ \t\r]*"
_SUSPECT = (
    rf"[:\[,-]{_BLANKS}(?i:nan|inf)|,{_BLANKS}[\]}}]|[eE]-[0-9]{{3}}"
    rf"|[:\[,]{_BLANKS}-?[0-9.]+[eE]\+?[0-9]{{3}}"  # a number DuckDB may keep as written
)
_LONG = "[0-9.]{15}"  # 15+ digits and dots (mark 1): the SQL's regex decides
_ONE = pa.scalar(1, pa.uint8())


def maybe_inexact(lines: pa.Array) -> pa.Array:
    """For each line: 2 if it holds text DuckDB's reader would accept or store other than the
    exact parser (always parsed by Python), 1 if it has a run of 15+ digits and dots (a
    number a double may not hold, or a long integer, which the SQL lets through), else 0.
    One pass of RE2 (Arrow's regex) over every line for both marks, then one over the few
    lines it found to tell them apart: half the time of a translate and a search a mark."""
    found = pc.match_substring_regex(lines, f"{_SUSPECT}|{_LONG}")
    marks = pc.cast(found, pa.uint8())
    which = pc.indices_nonzero(found)
    if not len(which):
        return marks
    suspect = pc.match_substring_regex(lines.take(which), _SUSPECT)
    return pc.replace_with_mask(marks, found, pc.add(pc.cast(suspect, pa.uint8()), _ONE))


def longest(lines: pa.Table) -> int:
    """The longest line's length in bytes, counting its newline: a line at the limit is
    declined too, and Python, which counts exactly, accepts it."""
    return int(pc.max(pc.binary_length(lines["raw"])).as_py() or 0)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MOST_KEYS = 32


def usual_keys(data: bytes) -> tuple[str, ...]:
    """The top-level keys of the chunk's first line, in its order, if it is a JSON object of
    plain names (at most 32): what most lines of a result file have. () if not. A guess the
    SQL checks line by line (native_rows_sql), never trusts."""
    first = data[: data.find(b"\n")] if b"\n" in data else data
    try:
        line = orjson.loads(first)
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(line, dict) or len(line) > _MOST_KEYS:
        return ()
    keys = tuple(line)
    return keys if all(_NAME.fullmatch(key) for key in keys) else ()

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


def maybe_inexact(data: bytes, count: int) -> pa.Array:
    """1 for each line with a run of 15+ digits and dots (a number a double may not hold,
    or a long integer, which the SQL lets through); else 0. C-speed: translate and find."""
    marks = bytearray(count)
    numberish = data.translate(_NUMBERISH)
    line, counted, at = 0, 0, numberish.find(_LONG)
    while at >= 0:
        line += data.count(b"\n", counted, at)
        marks[line] = 1
        end = data.find(b"\n", at)
        if end < 0:
            break
        line, counted = line + 1, end + 1
        at = numberish.find(_LONG, counted)
    return pa.Array.from_buffers(pa.uint8(), count, [None, pa.py_buffer(marks)])

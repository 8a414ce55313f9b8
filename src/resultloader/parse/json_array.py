"""A top-level JSON array read by DuckDB's C++ JSON reader: its items as JSONL chunks.

`read_json_objects(format='array')` hands back each item's text exactly as written (numbers,
spacing, duplicate keys and all) several times faster than ijson builds Python objects, so the
chunks hold the bytes a JSONL file of the same rows would hold, and every sink reads them the
JSONL way. DuckDB reads files, not streams: the document is first spooled, decompressed, to a
temporary file, deleted when the items have been read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ResultLoaderError
from .._leftovers import spool_prefix
from .jsonl import CHUNK_BYTES, JsonlChunk

_BATCH_ITEMS = 256  # items an Arrow batch: several batches make a chunk of CHUNK_BYTES


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@contextlib.contextmanager
def spooled(stream: Readable) -> Iterator[str]:
    """The rest of `stream` in a temporary file, by path; the file is removed on exit.
    Its folder is named with our process id: a later load removes it if we are killed."""
    with tempfile.TemporaryDirectory(prefix=spool_prefix()) as folder:
        path = os.path.join(folder, "document.json")
        try:
            with open(path, "wb") as spool:
                shutil.copyfileobj(stream, spool, 1 << 20)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise ResultLoaderError(
                f"no space left for the temporary copy of the JSON array ({path}, "
                f"{os.path.getsize(path):,} bytes written) in {os.path.dirname(folder)}; "
                "point TMPDIR at a directory with more room"
            ) from None
        yield path


class Refused(Exception):
    """DuckDB would not read the document (malformed, an item too large to hold): ijson's turn."""


def native_items(path: str, source: str, memory: int) -> Generator[JsonlChunk, None, None]:
    """The array's items as JSONL chunks of about CHUNK_BYTES, numbered by item from 1.

    `memory` is this connection's share of the load's budget (Budget.array_reader_memory); an
    item DuckDB cannot hold within it (a few MB and up) stops the native reader, and ijson takes
    over from that item.

    Raises Refused where DuckDB refuses the document; the chunks yielded before then are good,
    and the caller goes on from the item after them.
    """
    con = duckdb.connect()
    try:
        # one thread: the sink's DuckDB works on the chunks meanwhile, and the read is I/O-bound
        con.execute("SET threads = 1")
        con.execute(f"SET memory_limit = '{memory // 2**20}MiB'")
        reader = con.sql(
            "SELECT json FROM read_json_objects(?, format = 'array')", params=[path]
        ).to_arrow_reader(_BATCH_ITEMS)
        pieces: list[bytes] = []
        first, count, size = 1, 0, 0
        for batch in reader:
            piece = _as_lines(batch.column(0))
            pieces.append(piece)
            count, size = count + batch.num_rows, size + len(piece)
            if size >= CHUNK_BYTES:
                yield JsonlChunk(source, b"".join(pieces), first, -1)
                pieces, first, size = [], count + 1, 0
        if pieces:
            yield JsonlChunk(source, b"".join(pieces), first, -1)
    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # Arrow's stream raises OSError
        raise Refused(str(exc)) from None
    finally:
        con.close()


def _as_lines(items: pa.Array) -> bytes:
    """Items as JSONL: each on one line. A raw newline inside an item can only be whitespace
    (JSON strings escape theirs), so it becomes a space."""
    lines = pc.binary_join_element_wise(pc.replace_substring(items, "\n", " "), "", "\n")
    offsets = lines.buffers()[1]
    assert offsets is not None
    ends = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offsets], offset=lines.offset)
    start, end = ends[0].as_py(), ends[-1].as_py()
    data = lines.buffers()[2]
    return data[start:end].to_pybytes() if data is not None else b""

"""How deep a JSON document nests, counted as its bytes stream to ijson.

ijson's C backend keeps the path of every open array and object as text ("data.item.output.item
..."): a document opening 100,000 arrays (a 100 KB file) costs it tens of GB. The JSONL routes
refuse a line nested deeper than orjson's 1024 levels at once; a document is cut where it would
nest deeper than that, and refused naming the item, before ijson holds the deep part. Counting
is vectorized (Arrow): strings are skipped by the parity of the unescaped quotes before each
byte, and the depth is the running sum of brackets outside them.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

MAX_DOCUMENT_DEPTH = 1024  # orjson's limit for a JSONL line: the same for a document
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as int8: +1 and -1
_BRACKETS = b"[{]}"


class DepthCount:
    """The nesting depth at the end of the bytes fed so far, with string and escape state."""

    def __init__(self, limit: int = MAX_DOCUMENT_DEPTH) -> None:
        self.limit, self.depth = limit, 0
        self.in_string = False
        self.escaped = False  # the last byte fed was a backslash that escapes the next one

    def fits(self, data: bytes) -> int:
        """How many bytes of `data` keep the document within the limit: len(data) if all.
        The state then stands at the end of those bytes."""
        if not data:
            return 0
        if self.escaped:  # the first byte is escaped: never a quote or a bracket
            data = b"_" + data[1:]
        plain = _ESCAPE.sub(b"__", data) if b"\\" in data else data
        self.escaped = plain.endswith(b"\\")  # an escape that the next bytes complete
        if not any(b in plain for b in (b'"', *(_BRACKETS[i : i + 1] for i in range(4)))):
            return len(data)
        return self._count(plain)

    def _count(self, plain: bytes) -> int:
        raw = pa.Array.from_buffers(pa.uint8(), len(plain), [None, pa.py_buffer(plain)])
        quotes = pc.cumulative_sum(pc.cast(pc.equal(raw, 34), pa.int32()))
        inside = pc.equal(pc.bit_wise_and(quotes, 1), 0 if self.in_string else 1)
        steps = pa.Array.from_buffers(
            pa.int8(), len(plain), [None, pa.py_buffer(plain.translate(_STEP))]
        )
        outside_brackets = pc.and_(pc.invert(inside), pc.is_in(raw, pa.array(_BRACKETS)))
        moves = pc.if_else(outside_brackets, pc.cast(steps, pa.int32()), 0)
        depths = pc.add(pc.cumulative_sum(moves), self.depth)
        if pc.max(depths).as_py() > self.limit:
            cut: int = pc.index(pc.greater(depths, self.limit), True).as_py()
            self._advance(depths, inside, cut)
            return cut
        self._advance(depths, inside, len(plain))
        return len(plain)

    def _advance(self, depths: pa.Array, inside: pa.Array, end: int) -> None:
        if end > 0:
            self.depth = depths[end - 1].as_py()
            self.in_string = inside[end - 1].as_py()

"""The reader between a JSON document's stream and ijson: drops a BOM, marks lone surrogate
escapes, cuts the document where it nests too deeply, and keeps an item longer than
max_line_bytes from being held whole."""

from __future__ import annotations

from codecs import BOM_UTF8
from dataclasses import dataclass
from typing import IO

from .._errors import LONG_ITEM, ParseError
from ._depth import DepthCount
from ._surrogates import LONE_SURROGATE, MARK, MARK_BYTES, mark_lone_surrogates, safe_cut

# ijson's reads: at its default 64 KiB, a string spanning many reads costs yajl quadratic time
# (a 40 MB item: 5.7 s, against 0.4 s at 1 MiB); usual rows read as fast either way
READ_BYTES = 1 << 20
NOT_JSON_HINT = "A JSON document must be JSON throughout: fix the input."


@dataclass
class ItemGuard:
    """Counts the items read and the bytes read since the last one: an item (or the text
    before the first) longer than `limit` stops the load before ijson holds it whole. The
    count lags the bytes by ijson's read-ahead at most, which the margin allows for."""

    source: str
    limit: int
    items: int = 0
    since_item: int = 0
    active: bool = True  # not while the document is copied to a file for DuckDB
    marked: bool = False  # a lone surrogate escape was marked (_surrogates.py)
    too_deep: bool = False  # the document was cut where it nests too deeply (_depth.py)
    not_blank: bool = False  # ... or at a form feed or vertical tab, which yajl takes as blank

    def read(self, size: int) -> None:
        self.since_item += size
        if self.active and self.since_item > self.limit + 2 * READ_BYTES:
            raise ParseError(
                self.source,
                0,
                -1,
                f"item {self.items + 1} of the array is longer than max_line_bytes "
                f"({self.limit:,} bytes)",
                LONG_ITEM,
            )

    def item_done(self, number: int) -> None:
        self.items, self.since_item = number, 0

    def check(self, text: bytes | str, number: int) -> None:
        """Refuse item `number` (its JSON text) if it holds a marked lone surrogate."""
        mark = MARK_BYTES if isinstance(text, bytes) else MARK
        if self.marked and mark in text:  # type: ignore[operator]
            what = f"item {number} of the array" if number else "the document"
            raise ParseError(self.source, 0, -1, f"{what}: {LONE_SURROGATE}", NOT_JSON_HINT)


NOT_BLANK = "invalid JSON: a form feed or vertical tab (JSON's blanks: space, tab, LF, CR)"


def _first_odd_blank(data: bytes) -> int:
    """Where the first form feed or vertical tab is, or -1: yajl reads them as blanks."""
    if b"\x0c" not in data and b"\x0b" not in data:
        return -1
    return min(i for i in (data.find(b"\x0c"), data.find(b"\x0b")) if i >= 0)


class NoBom:
    """What ijson reads: the stream without a leading UTF-8 BOM (which ijson rejects as an
    invalid character), lone surrogate escapes marked, every byte counted by the guard."""

    def __init__(self, stream: IO[bytes], guard: ItemGuard) -> None:
        self.stream, self.guard, self.first, self.pending = stream, guard, True, b""
        self.recorded: list[bytes] | None = None
        self.held = b""  # the end of the last read, which may be part of an escape
        self.depth = DepthCount()
        self.cut = False  # the rest is past the nesting limit: ijson sees the document end

    def _checked(self, size: int) -> bytes:
        """The next bytes, with lone surrogate escapes marked; never cut inside an escape."""
        if self.cut:
            return b""
        data = self._raw(size)
        if size == 0:
            return data
        while True:
            if not data:  # the end: what was held back is all there is
                data, self.held = self.held, b""
                break
            data = self.held + data
            cut = safe_cut(data)
            if cut > 0:
                data, self.held = data[:cut], data[cut:]
                break
            self.held, data = data, self._raw(size)
        data, found = mark_lone_surrogates(data)
        self.guard.marked = self.guard.marked or found
        keep = self.depth.fits(data)
        if keep < len(data):
            data, self.cut, self.guard.too_deep = data[:keep], True, True
        odd = _first_odd_blank(data)
        if odd >= 0:  # JSON's blanks are space, tab, LF and CR; inside strings none is allowed
            data, self.cut, self.guard.not_blank = data[:odd], True, True
        return data

    def _raw(self, size: int) -> bytes:
        data = self.stream.read(size)
        if self.first and data:  # ijson first calls read(0), to tell bytes from text
            self.first = False
            if data.startswith(BOM_UTF8):
                data = data[len(BOM_UTF8) :] or self.stream.read(size)
        return data

    def read(self, size: int = -1) -> bytes:
        if self.pending and size != 0:
            data, self.pending = self.pending, b""
        else:
            data = self._checked(size)
        if self.recorded is not None:
            self.recorded.append(data)
        self.guard.read(len(data))
        return data

    def record(self) -> None:
        """Keep what is read from now on, for `rewind`."""
        self.recorded = []

    def rewind(self) -> None:
        """Read again from where `record` was called."""
        if self.recorded is not None:
            self.pending = b"".join([*self.recorded, self.pending])
            self.recorded = None

    def head(self) -> bytes:
        """The first bytes of the document (without a BOM), still to be read."""
        if not self.pending and self.first:
            self.pending = self.read(65536)
        return self.pending

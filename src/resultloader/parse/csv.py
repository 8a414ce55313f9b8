"""CSV (the batch download case): a header row names the columns; the key column is `id` by
default. `output` and `metadata` cells that are JSON text are stored as that JSON (`123`, `1e400`,
`{"a":1}`, `"quoted"`), any other text as a JSON string; the key, `url` and every other column
are text (those beyond the row model land in `extra` as strings). The delimiter is `,`, a tab for
TSV, or `LoadOptions.delimiter`. Quoted newlines are fine; ragged rows are bad rows.

Lines are read and decoded here, not by a TextIOWrapper, so that a bad record is reported with
the line it starts on and its exact raw text, invalid UTF-8 is one bad row rather than the end
of the load, and an unterminated quote cannot pull the rest of the file into one field.
"""

from __future__ import annotations

import csv
import sys
from codecs import BOM_UTF8
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .._errors import CSV_HEADER, LONG_RECORD, ParseError
from .._model import LoadOptions, Reject, RowBatch
from ._rows import NESTED_TOO_DEEPLY, dumps, line_needs_exact, may_hold_long_numbers
from .jsonl import decode_line
from .jsonl import why_not_json as reason_of

csv.field_size_limit(sys.maxsize)  # max_line_bytes guards memory, not the csv module's 128 KiB


class _Lines:
    """The stream's lines as text, for csv.reader; remembers the raw text of the current record.

    Invalid UTF-8 is decoded with surrogateescape so the record can be rejected on its own.
    """

    def __init__(self, stream: IO[bytes], source: str, limit: int) -> None:
        self.stream, self.source, self.limit = stream, source, limit
        self.taken: list[str] = []
        self.size = 0  # bytes of the current record so far
        self.line = 0  # lines read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = self.stream.readline(self.limit + 1)
        if not data:
            raise StopIteration
        if self.line == 0 and data.startswith(BOM_UTF8):
            data = data[len(BOM_UTF8) :]
        self.line += 1
        self.size += len(data)
        if self.size > self.limit:
            start = self.line - len(self.taken)
            raise ParseError(
                self.source,
                start,
                -1,
                f"record longer than max_line_bytes ({self.limit:,} bytes), "
                "perhaps from an unterminated quote",
                LONG_RECORD,
            )
        text = data.decode("utf-8", "surrogateescape")
        self.taken.append(text)
        return text

    def record(self) -> tuple[int, str]:
        """The current record's first line number and raw text (without its line ending)."""
        start, raw = self.line - len(self.taken) + 1, "".join(self.taken)
        self.taken, self.size = [], 0
        return start, raw.rstrip("\r\n")


def parse_csv(
    stream: IO[bytes], source: str, options: LoadOptions, delimiter: str = ","
) -> Iterator[RowBatch]:
    lines = _Lines(stream, source, options.max_line_bytes)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return
        lines.record()
        layout = _Layout.of(header, source, options.key)
        batch = RowBatch()
        for cells in reader:
            line, raw = lines.record()
            if not cells:  # a blank line; `""` is a record (of one empty field)
                continue
            _add_row(batch, layout, cells, line, raw)
            if len(batch) + len(batch.rejects) >= options.batch_rows:  # rejects use memory too
                yield batch
                batch = RowBatch()
        if len(batch) or batch.rejects:
            yield batch
    except csv.Error as exc:
        line = lines.line - len(lines.taken) + 1
        raise ParseError(source, line, -1, f"invalid CSV: {exc}") from None


@dataclass(frozen=True)
class _Layout:
    """Where the row model's columns are, worked out once from the header."""

    width: int
    key: str
    key_at: int
    output_at: int | None
    metadata_at: int | None
    url_at: int | None
    extra: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, header: list[str], source: str, key: str) -> _Layout:
        columns = _columns(header, source, key)
        standard = {key, "output", "metadata", "url"}
        return cls(
            width=len(header),
            key=key,
            key_at=columns[key],
            output_at=columns.get("output"),
            metadata_at=columns.get("metadata"),
            url_at=columns.get("url"),
            extra=tuple((name, i) for name, i in columns.items() if name not in standard),
        )


def _columns(header: list[str], source: str, key: str) -> dict[str, int]:
    if _has_bad_utf8(",".join(header)):
        raise ParseError(source, 1, -1, "the header row is not valid UTF-8", CSV_HEADER)
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in columns:  # two columns of one name: one would silently shadow the other
            raise ParseError(source, 1, -1, f"column {name!r} appears twice", CSV_HEADER)
        columns[name] = i
    if key not in columns:
        found = ", ".join(repr(h) for h in header[:20])
        more = f" and {len(header) - 20} more" if len(header) > 20 else ""
        raise ParseError(
            source, 1, -1, f"no {key!r} column in the header (found {found}{more})", CSV_HEADER
        )
    return columns


def _add_row(batch: RowBatch, layout: _Layout, cells: list[str], line: int, raw: str) -> None:
    reason = _bad_record(layout, cells, raw)
    if reason:
        text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        batch.rejects.append(Reject(line, -1, reason, text))
        return
    url = cells[layout.url_at] or None if layout.url_at is not None else None
    extra = {name: cells[i] for name, i in layout.extra}
    try:
        output, metadata = (
            _json_cell(cells, layout.output_at),
            _json_cell(cells, layout.metadata_at),
        )
    except ValueError as exc:  # JSON nested too deeply: a bad row, as on the JSONL routes
        text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        batch.rejects.append(Reject(line, -1, str(exc), text))
        return
    batch.append(
        cells[layout.key_at], output, metadata, url, dumps(extra, False) if extra else None, line
    )


def _bad_record(layout: _Layout, cells: list[str], raw: str) -> str | None:
    if len(cells) != layout.width:
        return f"expected {layout.width} fields, found {len(cells)}"
    if cells[layout.key_at] == "":
        return f"empty {layout.key!r}"
    if _has_bad_utf8(raw):  # one check of the record's text, cheaper than one per cell
        return "invalid UTF-8"
    return None


def _has_bad_utf8(text: str) -> bool:
    """Undecodable bytes became lone surrogates (surrogateescape), which cannot be encoded."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_cell(cells: list[str], index: int | None) -> str | None:
    """A cell that is JSON text, read as a JSONL line would be (RFC 8259, numbers exactly as
    written: `1e400` is a number like `123`), is stored as that JSON; any other text (`nan`,
    `hello`, `[1,]`) as a JSON string; an empty cell as no value.

    Raises ValueError(NESTED_TOO_DEEPLY) for JSON nested too deeply, as a JSONL line would be."""
    if index is None or cells[index] == "":
        return None
    cell = cells[index].encode("utf-8", "surrogateescape")
    try:
        value, exact = decode_line(cell, may_hold_long_numbers(cell) and line_needs_exact(cell))
    except (ValueError, RecursionError) as exc:
        if reason_of(exc, cell) == NESTED_TOO_DEEPLY:
            raise ValueError(NESTED_TOO_DEEPLY) from None
        return dumps(cells[index], False)
    return None if value is None else dumps(value, exact)

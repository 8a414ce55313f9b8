"""CSV (the batch download case): a header row names the columns; the key column is `id` by
default. `output` and `metadata` cells holding JSON are stored as that JSON, other cells as text;
columns beyond the row model land in `extra`. Quoted newlines are fine; ragged rows are bad rows.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from typing import IO, Any

import orjson

from .._errors import ParseError
from .._model import LoadOptions, Reject, RowBatch
from ._rows import decode_exact, dumps, may_hold_long_numbers

csv.field_size_limit(sys.maxsize)  # the line limit guards memory, not the csv module's 128 KiB


def parse_csv(stream: IO[bytes], source: str, options: LoadOptions) -> Iterator[RowBatch]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = _columns(header, source, options.key)
        batch = RowBatch()
        for cells in reader:
            line = reader.line_num
            if not cells or cells == [""]:
                continue
            _add_row(batch, header, columns, cells, line, options)
            if len(batch) >= options.batch_rows:
                yield batch
                batch = RowBatch()
        if len(batch) or batch.rejects:
            yield batch
    except UnicodeDecodeError as exc:
        raise ParseError(source, reader.line_num + 1, -1, f"invalid UTF-8: {exc.reason}") from None
    except csv.Error as exc:
        raise ParseError(source, reader.line_num, -1, f"invalid CSV: {exc}") from None


def _columns(header: list[str], source: str, key: str) -> dict[str, int]:
    columns = {name: i for i, name in enumerate(header)}
    if key not in columns:
        found = ", ".join(repr(h) for h in header[:10])
        raise ParseError(
            source, 1, 0, f"no {key!r} column in the header (found {found}); pass --key COLUMN"
        )
    return columns


def _add_row(
    batch: RowBatch,
    header: list[str],
    columns: dict[str, int],
    cells: list[str],
    line: int,
    options: LoadOptions,
) -> None:
    if len(cells) != len(header):
        raw = ",".join(cells)
        reason = f"expected {len(header)} fields, found {len(cells)}"
        batch.rejects.append(Reject(line, -1, reason, raw))
        return
    row_id = cells[columns[options.key]]
    if row_id == "":
        batch.rejects.append(Reject(line, -1, f"empty {options.key!r}", ",".join(cells)))
        return
    output = _json_cell(cells, columns.get("output"))
    metadata = _json_cell(cells, columns.get("metadata"))
    url_cell = columns.get("url")
    url = cells[url_cell] or None if url_cell is not None else None
    standard = {options.key, "output", "metadata", "url"}
    extra = {name: cells[i] for name, i in columns.items() if name not in standard}
    batch.append(row_id, output, metadata, url, dumps(extra, False) if extra else None, line)


def _json_cell(cells: list[str], index: int | None) -> str | None:
    """A cell that holds JSON is stored as that JSON; any other text as a JSON string."""
    if index is None or cells[index] == "":
        return None
    cell = cells[index]
    value: Any
    try:
        exact = may_hold_long_numbers(cell.encode())
        value = decode_exact(cell) if exact else orjson.loads(cell)
    except ValueError:
        return dumps(cell, False)
    return None if value is None else dumps(value, exact)

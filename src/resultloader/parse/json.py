"""JSON documents, streamed with ijson: the items of an array become rows.

Which array: an explicit items path (`results.items`, ijson's dotted prefix without `.item`), else
a top-level array, else a top-level `data` array; a document that is one object is one row.
Numbers come from ijson as int and Decimal, so they are kept exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import ijson

from .._errors import ParseError
from .._model import LoadOptions, Reject, RowBatch
from ._rows import add_object, dumps


def parse_json(stream: IO[bytes], source: str, options: LoadOptions) -> Iterator[RowBatch]:
    try:
        yield from _parse(stream, source, options)
    except ijson.JSONError as exc:
        raise ParseError(source, 0, -1, f"invalid JSON document: {exc}") from None


def _parse(stream: IO[bytes], source: str, options: LoadOptions) -> Iterator[RowBatch]:
    wanted = _items_prefix(options.items_path)
    batch, count = RowBatch(), 0
    item: ijson.ObjectBuilder | None = None
    depth = 0
    top = ijson.ObjectBuilder()  # the document outside the items, for the one-object case
    stack: list[str] = []  # "map" / "array" containers enclosing the current event
    for prefix, event, value in ijson.parse(stream, use_float=False):
        if item is None and _starts_item(prefix, event, stack, wanted):
            item, depth = ijson.ObjectBuilder(), 0
        if item is not None:
            item.event(event, value)
            depth += _DEPTH.get(event, 0)
            if depth == 0:
                count += 1
                _add(batch, item.value, options, count)
                item = None
                if len(batch) >= options.batch_rows:
                    yield batch
                    batch = RowBatch()
            continue
        if event in ("start_map", "start_array"):
            stack.append(event[6:])
        elif event in ("end_map", "end_array"):
            stack.pop()
        if wanted is None and not count:
            top.event(event, value)
    if count == 0 and wanted is not None:
        raise ParseError(source, 0, -1, f"no items at items path {options.items_path!r}")
    if count == 0 and isinstance(top.value, dict):
        _add(batch, top.value, options, 1)  # a document that is one object is one row
    if len(batch) or batch.rejects:
        yield batch


_DEPTH = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}


def _starts_item(prefix: str, event: str, stack: list[str], wanted: str | None) -> bool:
    """Does this event open an element of the array whose items are the rows?"""
    if event in ("end_map", "end_array", "map_key") or not stack or stack[-1] != "array":
        return False
    if wanted is not None:
        return prefix == wanted
    return (prefix == "item" and len(stack) == 1) or (prefix == "data.item" and len(stack) == 2)


def _items_prefix(items_path: str | None) -> str | None:
    if not items_path:
        return None
    path = items_path.strip(".")
    return f"{path}.item" if path else "item"


def _add(batch: RowBatch, value: Any, options: LoadOptions, number: int) -> None:
    if not isinstance(value, dict):
        batch.rejects.append(Reject(number, -1, "item is not a JSON object", dumps(value, True)))
        return
    raw = None if options.on_error != "quarantine" else dumps(value, True)
    reason = add_object(batch, value, options.key, number, exact=True)
    if reason:
        batch.rejects.append(Reject(number, -1, reason, raw or ""))


def document_row(stream: IO[bytes], source: str, row_id: str) -> RowBatch:
    """The whole document as one row's output, byte for byte (it is validated, not rewritten)."""
    text = stream.read()
    try:
        for _ in ijson.parse(text, use_float=False):
            pass
    except ijson.JSONError as exc:
        raise ParseError(source, 0, -1, f"invalid JSON document: {exc}") from None
    batch = RowBatch()
    batch.append(row_id, text.decode("utf-8").strip(), None, None, None, 1)
    return batch

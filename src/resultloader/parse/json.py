"""JSON documents, streamed with ijson: the items of an array become rows.

Which array: an explicit items path (`results.items`, ijson's dotted prefix without `.item`), else
a top-level array, else a top-level `data` array; a document that is one object is one row.
Numbers come from ijson as int and Decimal, so they are kept exactly. The common case, a
top-level array for a sink that reads JSONL, skips ijson: DuckDB reads the items' text from a
spooled copy (json_array.py), several times faster.

A JSON document has no useful line numbers (it may be one line), so a bad item is named by its
number in the array: that number is the reject's `line`.
"""

from __future__ import annotations

import contextlib
import decimal
import os
from codecs import BOM_UTF8
from collections.abc import Iterator
from typing import IO, Any

import ijson
import orjson

from .._errors import NO_ITEMS_ARRAY, NOT_ONE_DOCUMENT, ROWS_IN_AN_ARRAY, ParseError
from .._mapping import MISSING
from .._model import LoadOptions, Reject, RowBatch
from ._depth import DepthCount
from ._ijson_errors import ijson_reason
from ._numbers import HUGE_EXPONENT
from ._reader import NOT_BLANK, NOT_JSON_HINT, READ_BYTES, ItemGuard, NoBom
from ._rows import NESTED_TOO_DEEPLY, _raw_default, add_object, dumps, key_value, kind_of
from ._surrogates import LONE_SURROGATE, mark_lone_surrogates
from .json_array import Refused, native_items, spooled
from .jsonl import CHUNK_BYTES, JsonlChunk

INVALID_UTF8 = "invalid UTF-8"  # a JSONL line's reason
_BLANK = b" \t\r\n"  # JSON's whitespace


def parse_json(
    stream: IO[bytes], source: str, options: LoadOptions, *, as_lines: bool = False
) -> Iterator[RowBatch | JsonlChunk]:
    """Rows of the document, as RowBatches; with `as_lines`, a top-level array's items come
    as JSONL chunks instead (one item a line, numbered by item), for sinks that read JSONL."""
    guard = ItemGuard(source, options.max_line_bytes)
    reader = NoBom(stream, guard)
    try:
        if as_lines and not options.items_path and reader.head().lstrip()[:1] == b"[":
            yield from _array_natively(reader, source, options)
        elif as_lines:
            yield from _nested_array_as_lines(reader, source, options)
        else:
            yield from _parse(reader, source, options)
    except (ijson.JSONError, UnicodeDecodeError, decimal.InvalidOperation) as exc:
        reason, as_jsonl = _reason(exc, guard)
        if as_jsonl:  # a fault a JSONL line would have, named as there, in the item it is in
            what = f"item {guard.items + 1} of the array: {reason}"
            raise ParseError(source, 0, -1, what, NOT_JSON_HINT) from None
        where = f" (after item {guard.items} of the array)" if guard.items else ""
        raise ParseError(source, 0, -1, reason + where, NOT_ONE_DOCUMENT) from None


def _reason(exc: Exception, guard: ItemGuard) -> tuple[str, bool]:
    """Why ijson stopped, and whether it is a JSONL line's reason (named by its item)."""
    if guard.too_deep:  # the reader cut the document there: ijson found it ending early
        return NESTED_TOO_DEEPLY, True
    if guard.not_blank:
        return NOT_BLANK, True
    if isinstance(exc, UnicodeDecodeError):  # yajl's strings are decoded by Python
        return INVALID_UTF8, True
    if isinstance(exc, decimal.InvalidOperation):  # ijson's Decimal of a number's text
        return HUGE_EXPONENT, True
    return ijson_reason(exc)


def _array_natively(
    reader: NoBom, source: str, options: LoadOptions
) -> Iterator[RowBatch | JsonlChunk]:
    """A top-level array's items as JSONL chunks, read by DuckDB from a spooled copy.

    Where DuckDB refuses the document (malformed, an item too large for its memory), ijson goes on
    from the first item not yet yielded: it reads what DuckDB would not, or names the error.
    """
    reader.guard.active = False
    with spooled(reader) as path:
        reader.guard.active = True
        done = 0
        memory = options.budget().array_reader_memory
        with contextlib.closing(native_items(path, source, memory)) as items:
            while not reader.guard.marked:  # DuckDB would read the marks as text
                try:
                    chunk = next(items, None)
                except Refused:
                    break
                if chunk is None:
                    if _ends_the_array(path):
                        return
                    break  # DuckDB took `[{...},` as whole: ijson says where it ends
                yield chunk
                done = chunk.first_line + chunk.data.count(b"\n") - 1
        with open(path, "rb") as again:
            reader = NoBom(again, reader.guard)
            reader.guard.since_item = 0
            yield from _array_as_lines(reader, source, options, skip=done)


def _ends_the_array(path: str) -> bool:
    """Does the document end with `]`, not after a comma? DuckDB's reader takes an array cut
    right after a comma for a complete one."""
    with open(path, "rb") as document:
        document.seek(max(0, os.path.getsize(path) - 65536))
        tail = document.read().rstrip(_BLANK)
    return tail.endswith(b"]") and not tail[:-1].rstrip(_BLANK).endswith(b",")


def _nested_array_as_lines(
    reader: NoBom, source: str, options: LoadOptions
) -> Iterator[RowBatch | JsonlChunk]:
    """The items of a `data` array or of the items path, built by ijson's C backend: a first
    pass over the document's head finds the array, then the head is read again. Twice as fast
    as `_parse`, whose loop runs in Python for every event (1M items: 11 s against 22 s). A
    document without such an array (one object, or an error) goes to `_parse` whole."""
    reader.record()
    prefix = _items_array_prefix(reader, options)
    reader.rewind()
    reader.guard.since_item = 0  # the head is read twice
    if prefix is None:
        yield from _parse(reader, source, options)
    else:
        yield from _array_as_lines(reader, source, options, prefix=prefix)


def _items_array_prefix(reader: NoBom, options: LoadOptions) -> str | None:
    """ijson's prefix of the items, read from the events before the items array starts."""
    wanted = _items_prefix(options.items_path)
    stack: list[str] = []
    for prefix, event, _ in ijson.parse(reader, use_float=False, buf_size=READ_BYTES):
        if event == "start_array" and _is_items_array(prefix, stack, wanted):
            return f"{prefix}.item" if prefix else "item"
        if event in ("start_map", "start_array"):
            stack.append(event[6:])
        elif event in ("end_map", "end_array"):
            stack.pop()
    return None


def _array_as_lines(
    reader: NoBom, source: str, options: LoadOptions, skip: int = 0, prefix: str = "item"
) -> Iterator[RowBatch | JsonlChunk]:
    """The items at `prefix` after the first `skip`, re-serialized as JSONL chunks by
    ijson's C backend and orjson.

    Items that are not plain rows (not an object, an odd key) take the RowBatch path, which
    reports them; a chunk never spans one, so an item's line in its chunk stays its number.
    """
    # one buffer, not a list of orjson's bytes: each of those keeps the few KiB orjson
    # allocated to write it (measured: a chunk of such lines held 150 MB)
    lines, first = bytearray(), skip + 1
    for number, value in enumerate(
        ijson.items(reader, prefix, use_float=False, buf_size=READ_BYTES), 1
    ):
        reader.guard.item_done(number)
        if number <= skip:
            continue  # read by DuckDB already
        line = _plain_line(value, options.key)
        if line is not None:
            reader.guard.check(line, number)
            lines += line
            lines += b"\n"
            if len(lines) >= CHUNK_BYTES:
                yield JsonlChunk(source, bytes(lines), first, -1)
                lines, first = bytearray(), number + 1
            continue
        if lines:
            yield JsonlChunk(source, bytes(lines), first, -1)
        batch = RowBatch()
        _add(batch, value, options, number, reader.guard)
        yield batch
        lines, first = bytearray(), number + 1
    if lines:
        yield JsonlChunk(source, bytes(lines), first, -1)


def _plain_line(value: Any, key: str) -> bytes | None:
    """The item as one JSON line, exactly (Decimals as written); None if it is not a plain row
    (not an object, an odd key) or orjson cannot write it (big ints, deep nesting): those take
    the RowBatch path, which knows what to do with each."""
    if not isinstance(value, dict) or type(key_value(value, key)) not in (str, int):
        return None
    try:
        return orjson.dumps(value, default=_raw_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except orjson.JSONEncodeError:
        try:
            return dumps(value, True).encode()
        except ValueError:
            return None


def _parse(stream: NoBom, source: str, options: LoadOptions) -> Iterator[RowBatch]:
    wanted = _items_prefix(options.items_path)
    batch, count, found = RowBatch(), 0, False
    item: ijson.ObjectBuilder | None = None
    depth = 0
    top = ijson.ObjectBuilder()  # the document outside the items, for the one-object case
    stack: list[str] = []  # "map" / "array" containers enclosing the current event
    for prefix, event, value in ijson.parse(stream, use_float=False, buf_size=READ_BYTES):
        if item is None and _starts_item(prefix, event, stack, wanted):
            item, depth = ijson.ObjectBuilder(), 0
        if item is not None:
            item.event(event, value)
            depth += _DEPTH.get(event, 0)
            if depth == 0:
                count += 1
                stream.guard.item_done(count)
                _add(batch, item.value, options, count, stream.guard)
                item = None
                if len(batch) + len(batch.rejects) >= options.batch_rows:  # rejects too
                    yield batch
                    batch = RowBatch()
            continue
        if event == "start_array" and _is_items_array(prefix, stack, wanted):
            found = True  # an empty items array is zero rows, not a missing one
        if event in ("start_map", "start_array"):
            stack.append(event[6:])
        elif event in ("end_map", "end_array"):
            stack.pop()
        if wanted is None and not found:
            top.event(event, value)
    if not found:
        _add_document(batch, top, stream.guard, options)
    if len(batch) or batch.rejects:
        yield batch


def _add_document(batch: RowBatch, top: Any, guard: ItemGuard, options: LoadOptions) -> None:
    """No items array: a document that is one object is one row; anything else is an error."""
    source = guard.source
    if options.items_path:
        raise ParseError(
            source,
            0,
            -1,
            f"no array at items path {options.items_path!r}",
            NO_ITEMS_ARRAY,
        )
    if not isinstance(top.value, dict):
        kind = kind_of(top.value)
        raise ParseError(
            source, 0, -1, f"the document is {kind}, not an array or an object", NOT_ONE_DOCUMENT
        )
    arrays = [k for k, v in top.value.items() if isinstance(v, list)]
    if key_value(top.value, options.key) is MISSING and arrays:
        # most likely the rows are in one of these arrays, not the document itself
        raise ParseError(
            source,
            0,
            -1,
            f"the document is one object without an {options.key!r} field (top-level "
            f"arrays: {', '.join(map(repr, arrays[:5]))})",
            ROWS_IN_AN_ARRAY,
        )
    _add(batch, top.value, options, 0, guard)  # item 0: the document itself


_DEPTH = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}


def _starts_item(prefix: str, event: str, stack: list[str], wanted: str | None) -> bool:
    """Does this event open an element of the array whose items are the rows?"""
    if event in ("end_map", "end_array", "map_key") or not stack or stack[-1] != "array":
        return False
    if wanted is not None:
        return prefix == wanted
    # the stack tells a top-level array's items ("item") from a top-level key named "item"
    return (prefix == "item" and len(stack) == 1) or (prefix == "data.item" and len(stack) == 2)


def _is_items_array(prefix: str, stack: list[str], wanted: str | None) -> bool:
    """Is the array opening here (start_array at `prefix`) the one whose items are rows?"""
    if wanted is not None:
        return f"{prefix}.item" == wanted
    return (prefix == "" and not stack) or (prefix == "data" and stack == ["map"])


def _items_prefix(items_path: str | None) -> str | None:
    if not items_path:
        return None
    path = items_path.strip(".")
    return f"{path}.item" if path else "item"


def _add(batch: RowBatch, value: Any, options: LoadOptions, number: int, guard: ItemGuard) -> None:
    source = guard.source
    if guard.marked:
        with contextlib.suppress(ValueError):  # too deep to write: add_object says so
            guard.check(dumps(value, True), number)
    if not isinstance(value, dict):
        why = f"not a JSON object ({kind_of(value)})"
        _reject(batch, number, why, _raw_text(value), options, source)
        return
    raw = _raw_text(value) if options.on_error == "quarantine" else ""  # before add_object pops
    reason = add_object(batch, value, options.key, number, True, options.id_prefix, options.mapping)
    if reason:
        _reject(batch, number, reason, raw, options, source)


def _raw_text(value: Any) -> str:
    """An item's JSON text for the rejects table; a value too deep to write is kept as its
    repr's first KiB (add_object then refuses it for its depth)."""
    try:
        return dumps(value, True)
    except ValueError:
        return repr(value)[:1024]


def _reject(
    batch: RowBatch, number: int, reason: str, raw: str, options: LoadOptions, source: str
) -> None:
    if options.on_error == "fail":  # named by item: a document's line numbers mean little
        what = f"item {number} of the array" if number else "the document (one object)"
        raise ParseError(source, 0, -1, f"{what}: {reason}")
    batch.rejects.append(Reject(number, -1, reason, raw))


def document_row(stream: IO[bytes], source: str, row_id: str) -> RowBatch:
    """The whole document as one row's output, byte for byte (it is validated, not rewritten)."""
    text = stream.read()
    if text.startswith(BOM_UTF8):
        text = text[len(BOM_UTF8) :]
    if mark_lone_surrogates(text)[1]:
        raise ParseError(source, 0, -1, f"the document: {LONE_SURROGATE}", NOT_JSON_HINT)
    if DepthCount().fits(text) < len(text):
        raise ParseError(source, 0, -1, f"the document: {NESTED_TOO_DEEPLY}", NOT_JSON_HINT)
    try:
        for _ in ijson.parse(text, use_float=False):
            pass
    except ijson.JSONError as exc:
        raise ParseError(source, 0, -1, ijson_reason(exc)[0], NOT_ONE_DOCUMENT) from None
    except UnicodeDecodeError:
        raise ParseError(source, 0, -1, f"the document: {INVALID_UTF8}", NOT_JSON_HINT) from None
    batch = RowBatch()
    batch.append(row_id, text.decode("utf-8").strip(), None, None, None, 1)
    return batch

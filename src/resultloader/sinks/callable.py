"""Adapt a user's function into a sink: per row, like the seed's
`upsert_result(id, output, metadata, url)`, or per batch."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._model import CommitResult, LoadInfo, LoadReport, RowBatch
from ..parse._rows import to_python as decode
from . import SinkCapabilities


class RowFunctionSink:
    """Calls `fn(id, output, metadata, url)` once per row, with decoded JSON values; a function
    that also takes `extra` (or `**kwargs`) gets the row's other fields as `extra=`, a dict.

    Rows reach the function as they are read; it is the function's store that makes
    the last row of an id win. `commit`/`abort` call the optional `on_commit`/`on_abort`.
    """

    capabilities = SinkCapabilities()

    def __init__(
        self,
        fn: Callable[..., Any],
        on_commit: Callable[[], Any] | None = None,
        on_abort: Callable[[], Any] | None = None,
    ) -> None:
        self.fn, self.on_commit, self.on_abort = fn, on_commit, on_abort
        self.takes_extra = _takes_extra(fn)
        self.info: LoadInfo | None = None

    def begin(self, info: LoadInfo) -> None:
        self.info = info

    def write(self, batch: RowBatch) -> None:
        for at, row in enumerate(batch.rows()):
            try:
                self._call(*row)
            except Exception as exc:
                where = self._where(batch.seq[at : at + 1])
                add_note(exc, f"raised by {_name(self.fn)} for row {row[0]!r} ({where})")
                raise

    def _call(
        self, row_id: str, output: str | None, metadata: str, url: str | None, extra: str | None
    ) -> None:
        value = None if output is None else decode(output)
        if self.takes_extra:
            fields = {} if extra is None else decode(extra)
            self.fn(row_id, value, decode(metadata), url, extra=fields)
        else:
            self.fn(row_id, value, decode(metadata), url)

    def _where(self, seq: list[int]) -> str:
        """The source, and the lines (a JSON document's items) the rows were read from."""
        info = self.info
        source = info.source if info else "the source"
        if info is None or info.format is None or not seq:
            return source  # rows from parts of many sources: numbered afresh, not by line
        kind = "item" if info.format == "json" else "line"
        first, last = min(seq), max(seq)
        return (
            f"{source}, {kind} {first}" if first == last else f"{source}, {kind}s {first} to {last}"
        )

    def commit(self, report: LoadReport | None = None) -> CommitResult | None:
        if self.on_commit:
            self.on_commit()
        return None

    def abort(self, error: str | None = None) -> None:
        if self.on_abort:
            self.on_abort()


class BatchFunctionSink(RowFunctionSink):
    """Calls `fn(batch)` once per RowBatch (columns of JSON text; see RowBatch)."""

    def write(self, batch: RowBatch) -> None:
        try:
            self.fn(batch)
        except Exception as exc:
            rows = f"{len(batch):,} row" + ("" if len(batch) == 1 else "s")
            where = self._where(batch.seq)
            add_note(exc, f"raised by {_name(self.fn)} for a batch of {rows} ({where})")
            raise


def sink_from_callable(fn: Callable[..., Any]) -> RowFunctionSink:
    """A function of four or more parameters is per row; of one parameter, per batch.

    A function that can take neither is refused now, not at the first row, when the load
    would fail with a bare TypeError.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return RowFunctionSink(fn)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if positional and positional[-1].name == "extra" and len(positional) == 5:
        positional.pop()  # fn(id, output, metadata, url, extra): extra comes by keyword
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    if any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in params):
        raise TypeError(f"{_name(fn)} has required keyword-only parameters: {_SHAPES}")
    if len(positional) == 1 and not varargs:
        return BatchFunctionSink(fn)
    if len(required) <= 4 and (len(positional) >= 4 or varargs):
        return RowFunctionSink(fn)
    raise TypeError(f"{_name(fn)} takes {len(positional)} positional parameters: {_SHAPES}")


_SHAPES = (
    "a sink function takes one (batch) or four (id, output, metadata, url), and optionally extra"
)


def _takes_extra(fn: Callable[..., Any]) -> bool:
    """Does `fn` take an `extra` keyword: a parameter of that name, or **kwargs?"""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind == p.VAR_KEYWORD or (p.name == "extra" and p.kind != p.POSITIONAL_ONLY)
        for p in params
    )


def add_note(exc: BaseException, note: str) -> None:
    """Say where the user's function failed, keeping its exception as it is (its type, so
    `except TheirError` still catches it; its traceback): a note, as Python 3.11 shows under
    the traceback (PEP 678). On 3.10 the note is kept in `__notes__` all the same."""
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        try:
            exc.__notes__ = notes  # type: ignore[attr-defined]
        except AttributeError:  # an exception type that takes no attributes: leave it be
            return
    notes.append(note)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__

"""`failed`: the items of a provider's batch that did not succeed, to submit them again.

A provider's rows are keyed as its input lines are (`custom_id`, `recordId`, `key`), and a key's
row in the table is the one its latest load wrote (rows are upserted by key; unchanged rows are
kept). An item failed when its `status` column (where the provider declares one) is not
`succeeded`, or when one of its `error...` columns holds something. The table is read through
its sink's reading side (`LedgerSink.read_columns`), the same on every engine.

Given the job's input file, `failed_input` gives the input lines of exactly those items, byte
for byte, in the input's order: a JSONL file to submit as a new batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ParseError, SinkError
from .._redact import display_name
from ..providers import get_provider
from ..providers.base import Provider
from ..sinks import LedgerSink
from ..sinks.registry import sink_for

Target = str | os.PathLike[str]


def failed(into: Target, *, table: str = "results", provider: str | None = None) -> list[str]:
    """The keys of the items in `table` of `into` (a target as `load` takes it) that did not
    succeed, sorted. `provider` is the one whose columns tell (default: the one its loads
    named)."""
    where = display_name(os.fspath(into))
    sink = _ledger_sink(into, table, where)
    prov = _provider(sink, provider, where)
    status, errors = _telling_columns(prov)
    rows = sink.read_columns(["id", *status, *errors])
    if rows is None:
        raise SinkError(
            f"{where}: no table {table!r} to read (load into it first, or give --table)"
        )
    missing = [name for name in (*status, *errors) if name not in rows.column_names]
    if missing:
        raise SinkError(
            f"{where}: table {table!r} has no {missing[0]} column: its rows were loaded without "
            f"{prov.name}'s columns; load them again with --as {prov.name} (or ingest "
            f"{prov.name}) and their columns are filled"
        )
    bad = _failing(rows, status, errors)
    return sorted(str(key) for key in rows.filter(bad).column("id").to_pylist())


def failed_input(
    into: Target,
    input: str | os.PathLike[str],
    *,
    table: str = "results",
    provider: str | None = None,
) -> Iterator[bytes]:
    """The lines of `input` (the job's batch input file, JSONL) whose key is one of `failed`'s,
    each as it is in the file (its newline added where the last line has none), in the file's
    order. A file none of whose keys is a failed item's is refused (another job's input?)."""
    path = os.fspath(input)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file (the job's batch input file, JSONL)")
    where = display_name(os.fspath(into))
    sink = _ledger_sink(into, table, where)
    name = _provider(sink, provider, where).name
    keys = set(failed(into, table=table, provider=name))
    if not keys:
        return iter(())
    field = _input_key(get_provider(name))
    matched = [line for line, key in _keyed_lines(path, field) if key in keys]
    if not matched:
        example = sorted(keys)[0]
        raise ParseError(
            path,
            0,
            -1,
            f"no line has the {field} of one of the {len(keys)} failed items in {where} "
            f"(e.g. {example!r}): is it the input file of another job?",
            hint="",
        )
    return iter(matched)


def _ledger_sink(into: Target, table: str, where: str) -> LedgerSink:
    sink = sink_for(into, table)
    if not sink.capabilities.reads_ledger or not hasattr(sink, "read_columns"):
        raise SinkError(f"{where}: {type(sink).__name__} cannot read its table back")
    return cast(LedgerSink, sink)  # reads_ledger: a LedgerSink, as it declares


def _provider(sink: LedgerSink, name: str | None, where: str) -> Provider:
    """The provider named, else the one the table's committed loads named."""
    if name is not None:
        return get_provider(name)
    loads = sink.committed_loads()
    named = sorted({load.provider for load in loads if load.provider})
    if len(named) == 1:
        return get_provider(named[0])
    if not loads:
        raise SinkError(
            f"{where}: no load into this table yet (load into it first, or give --table)"
        )
    if not named:
        raise SinkError(
            f"{where}: no load into this table named a provider: give --provider NAME "
            "(provider= in Python)"
        )
    raise SinkError(
        f"{where}: loads of {', '.join(named)} went into this table: give --provider NAME"
    )


def _telling_columns(prov: Provider) -> tuple[list[str], list[str]]:
    """The provider's `status` column (if it declares one) and its `error...` columns."""
    names = [column.name for column in prov.columns]
    status = [name for name in names if name == "status"]
    errors = [name for name in names if name.startswith("error")]
    if not status and not errors:
        raise ValueError(
            f"{prov.name} declares no status or error column: its rows do not say which "
            "items failed"
        )
    return status, errors


def _failing(rows: pa.Table, status: Sequence[str], errors: Sequence[str]) -> pa.Array:
    """Rows whose status is not `succeeded` (NULL included), or with an error."""
    bad = pa.array([False] * rows.num_rows)
    for name in status:
        succeeded = pc.fill_null(pc.equal(rows.column(name).cast(pa.string()), "succeeded"), False)
        bad = pc.or_(bad, pc.invert(succeeded))
    for name in errors:
        bad = pc.or_(bad, pc.is_valid(rows.column(name)))
    return bad


def _input_key(prov: Provider) -> str:
    """The field of an input line that its result line is keyed by (`custom_id`...)."""
    return prov.mapping.key if prov.mapping is not None else "id"


def _keyed_lines(path: str, field: str) -> Iterator[tuple[bytes, str]]:
    """Each non-blank line of the JSONL file at `path`, as it is, with its key (as text)."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ParseError(path, number, -1, "not a JSON line", hint="") from None
            key = _at(item, field)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ParseError(
                    path,
                    number,
                    -1,
                    f"no {field} (a text or an integer): is it a batch input file?",
                    hint="",
                )
            yield (line if line.endswith(b"\n") else line + b"\n"), str(key)


def _at(item: Any, path: str) -> Any:
    for step in path.split("."):
        item = item.get(step) if isinstance(item, dict) else None
    return item

"""Which sink a target names: `--into TARGET` and `load(source, TARGET)`.

- a path, or `duckdb:PATH`: DuckDB (the default, `results.duckdb`);
- `postgresql://...` or `postgres://...`: PostgreSQL (extra `resultloader[postgres]`);
- `delta:PATH` or `delta:s3://bucket/prefix`: a Delta Lake table (extra `resultloader[delta]`).

Sinks with optional dependencies are imported only when named, so a missing extra is an error
for that target alone, naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from typing import Any

from .._errors import SinkError
from .._names import check_name
from .._redact import display_name
from . import Sink

# A URL scheme: two or more letters (one letter is a Windows drive), then `://`.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def _duckdb(target: str, table: str) -> Sink:
    from .duckdb.sink import DuckDBSink

    return DuckDBSink(target, table)


def _postgres(target: str, table: str) -> Sink:
    sink: Sink = optional_sink_module("PostgresSink").PostgresSink(target, table=table)
    return sink


def _delta(target: str, table: str) -> Sink:
    check_name("table", table)
    if table != "results":  # the default, which `--table` always passes
        raise ValueError(
            f"a Delta target is a table itself: table {table!r} does not apply (its location is "
            "delta:PATH)"
        )
    sink: Sink = optional_sink_module("DeltaSink").DeltaSink(target)
    return sink


# prefix -> (factory, whether the prefix is part of the target the sink gets)
_PREFIXES: dict[str, tuple[Callable[[str, str], Sink], bool]] = {
    "duckdb:": (_duckdb, False),
    "postgresql://": (_postgres, True),
    "postgres://": (_postgres, True),
    "delta:": (_delta, False),
}


def sink_for(target: str | os.PathLike[str], table: str = "results") -> Sink:
    """The sink `target` names, for `table` (a Delta target is the table itself)."""
    if isinstance(target, os.PathLike):
        return _duckdb(os.fspath(target), table)
    for prefix, (factory, keep) in _PREFIXES.items():
        if target.lower().startswith(prefix):
            rest = target if keep else target[len(prefix) :]
            if not rest:
                raise SinkError(f"{target!r}: the target names no {prefix.rstrip(':/')} location")
            return factory(rest, table)
    if _URL.match(target):
        raise SinkError(
            f"unknown target {display_name(target)!r}: use a DuckDB file path (or duckdb:PATH), "
            "postgresql://USER@HOST:PORT/DB, or delta:PATH (local or s3://)"
        )
    return _duckdb(target, table)


# sink class -> (its module, the extra that installs its package, the package)
_OPTIONAL = {
    "PostgresSink": ("resultloader.sinks.postgres", "postgres", "psycopg"),
    "DeltaSink": ("resultloader.sinks.delta.sink", "delta", "deltalake"),
}


def optional_sink_module(sink: str) -> Any:
    """Import a sink's module; if its package is missing, say which extra brings it."""
    module, extra, package = _OPTIONAL[sink]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != package:
            raise
        raise SinkError(
            f"this target needs the {package!r} package: pip install 'resultloader[{extra}]'"
        ) from None

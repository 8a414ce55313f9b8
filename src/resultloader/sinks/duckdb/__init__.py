"""The embedded default sink: DuckDB (the sink, its SQL, set-up, fast JSONL lines, tidying).

A target that is a path, or `duckdb:PATH`, is a DuckDB database file.
"""

from ..registry import SinkKind, register
from .sink import DuckDBSink

__all__ = ["KIND", "DuckDBSink"]

KIND = register(SinkKind(("duckdb",), DuckDBSink, "a DuckDB file path (or duckdb:PATH)"))

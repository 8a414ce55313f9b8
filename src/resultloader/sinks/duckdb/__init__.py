"""The embedded default sink: DuckDB (the sink, its SQL, set-up, fast JSONL lines, tidying)."""

from .sink import DuckDBSink

__all__ = ["DuckDBSink"]

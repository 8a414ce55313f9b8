"""resultloader: land the results of asynchronous API jobs in a table, streaming, exactly once.

>>> import resultloader
>>> report = resultloader.load("results.jsonl.gz")          # into results.duckdb
>>> report = resultloader.load(url, upsert_result)           # fn(id, output, metadata, url)
"""

from ._errors import (
    DownloadError,
    JobCancelled,
    JobExpired,
    JobFailed,
    NotReady,
    ParseError,
    PollError,
    ResolveError,
    ResultLoaderError,
    SinkError,
)
from ._model import CommitResult, LoadInfo, LoadOptions, LoadReport, Reject, RowBatch
from ._pipeline import load
from .parse import JsonlChunk
from .sinks import JsonlChunkSink, Sink
from .sinks.callable import BatchFunctionSink, RowFunctionSink
from .sinks.duckdb import DuckDBSink
from .sinks.memory import MemorySink

__all__ = [
    "BatchFunctionSink",
    "CommitResult",
    "DownloadError",
    "DuckDBSink",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JsonlChunk",
    "JsonlChunkSink",
    "LoadInfo",
    "LoadOptions",
    "LoadReport",
    "MemorySink",
    "NotReady",
    "ParseError",
    "PollError",
    "Reject",
    "ResolveError",
    "ResultLoaderError",
    "RowBatch",
    "RowFunctionSink",
    "Sink",
    "SinkError",
    "load",
]
__version__ = "0.1.0"

"""resultloader: land the results of asynchronous API jobs in a table, streaming, exactly once.

>>> import resultloader
>>> report = resultloader.load("results.jsonl.gz")          # into results.duckdb
>>> report = resultloader.load(url, upsert_result)           # fn(id, output, metadata, url)
>>> report = resultloader.ingest("pulse", job_id)            # poll, then load the result
>>> results = resultloader.ingest_many("openai-batch", ids)  # many jobs, polled at once
"""

from ._columns import Column, parse_column
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
from .parse import JsonlChunk
from .pipeline.failed import failed, failed_input
from .pipeline.ingest import ingest, resolve
from .pipeline.ingest_many import JobResult, JobTally, ingest_many
from .pipeline.load import load
from .pipeline.load_many import SourceResult, load_many
from .providers._client import ApiAccess
from .providers.base import Job
from .providers.location import Download, Inline
from .providers.poll import JobStatus, PollPolicy
from .sinks import JsonlChunkSink, Sink, SinkCapabilities
from .sinks.callable import BatchFunctionSink, RowFunctionSink
from .sinks.duckdb.sink import DuckDBSink
from .sinks.memory import MemorySink
from .sources.download import HttpPolicy

__all__ = [
    "ApiAccess",
    "BatchFunctionSink",
    "Column",
    "CommitResult",
    "DeltaSink",
    "Download",
    "DownloadError",
    "DuckDBSink",
    "HttpPolicy",
    "IcebergSink",
    "Inline",
    "Job",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobResult",
    "JobStatus",
    "JobTally",
    "JsonlChunk",
    "JsonlChunkSink",
    "LoadInfo",
    "LoadOptions",
    "LoadReport",
    "MemorySink",
    "NotReady",
    "ParseError",
    "PollError",
    "PollPolicy",
    "PostgresSink",
    "Reject",
    "ResolveError",
    "ResultLoaderError",
    "RowBatch",
    "RowFunctionSink",
    "Sink",
    "SinkCapabilities",
    "SinkError",
    "SourceResult",
    "failed",
    "failed_input",
    "ingest",
    "ingest_many",
    "load",
    "load_many",
    "parse_column",
    "resolve",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """The built-in sinks that need an extra (PostgresSink, DeltaSink, IcebergSink): imported
    when named."""
    from .sinks import registry

    found = registry.builtin_class(name)
    if found is None:
        raise AttributeError(f"module 'resultloader' has no attribute {name!r}")
    return found

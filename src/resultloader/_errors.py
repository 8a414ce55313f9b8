"""The error hierarchy: one root, one subclass per stage of the flow."""

from __future__ import annotations


class ResultLoaderError(Exception):
    """Root of every error resultloader raises on purpose."""


class PollError(ResultLoaderError):
    """The status endpoint could not be polled (auth, transport, timeout)."""


class ResolveError(ResultLoaderError):
    """A status payload does not say where the results are."""


class NotReady(ResolveError):
    """The job has not reached a terminal status yet (the CLI exits 3: try again later)."""

    exit_code = 3


class JobFailed(ResolveError):
    """The job ended in failure; the message carries the API's own error text."""


class JobCancelled(ResolveError):
    """The job was cancelled before it produced results."""


class JobExpired(ResolveError):
    """The job's results were purged or its download window has passed."""


class DownloadError(ResultLoaderError):
    """The result file could not be opened or read to the end.

    `status` is the HTTP status that refused the download, when that is what happened.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DatabaseSource(DownloadError):
    """A source that is a database file (DuckDB, SQLite): most likely the target, given in a
    source's place (`load export.json target.duckdb`, as `cp SRC DST` would have it)."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        message = f"{path}: not a text format we read (it is a {kind} database)"  # as parse's
        if kind == "DuckDB":  # a target resultloader writes
            hint = "did you mean to load into it (as the sink)?"
            message = f"{path} is a DuckDB database, not a result file: {hint}"
        super().__init__(message)


_BAD_ROW_HINT = "Fix the input, or rerun with --on-error skip or --on-error quarantine."


class ParseError(ResultLoaderError):
    """A row could not be read; carries the source, line number and byte offset."""

    def __init__(
        self, source: str, line: int, offset: int, reason: str, hint: str = _BAD_ROW_HINT
    ) -> None:
        self.source, self.line, self.offset, self.reason = source, line, offset, reason
        # line <= 0 and offset < 0 mean unknown (JSON documents, CSV): say nothing, not "-1"
        where = f"line {line}: " if line > 0 else ""
        if line > 0 and offset >= 0:
            where = f"line {line} (byte {offset}): "
        super().__init__(f"{source}: {where}{reason}. {hint}".rstrip())


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, docker and systemd send), handled like Ctrl-C: the CLI exits
    143 with nothing committed."""

    exit_code = 143


class SinkError(ResultLoaderError):
    """The sink refused the rows (database locked, bad table name, ...)."""

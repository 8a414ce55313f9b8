"""The error hierarchy: one root, one subclass per stage of the flow."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class Hint:
    """What to do about an error, in the words of each way in: `python` names an option as
    the API spells it (`on_error="skip"`) and ends the error's message; `cli` names it as the
    command line does (`--on-error skip`), and the CLI prints it in its place
    (cli/_common.in_cli_words). Every Hint is one of HINTS, below."""

    python: str
    cli: str

    def __str__(self) -> str:
        return self.python


BAD_ROWS = Hint(
    'Fix the input, or rerun with on_error="skip" or on_error="quarantine".',
    "Fix the input, or rerun with --on-error skip or --on-error quarantine.",
)
LONG_RECORD = Hint(
    "Fix the input, or raise max_line_bytes.", "Fix the input, or raise --max-line-bytes."
)
LONG_ITEM = Hint(
    "Raise max_line_bytes if the item is expected.",
    "Raise --max-line-bytes if the item is expected.",
)
CSV_HEADER = Hint(
    'Fix the header row, or pass key="COLUMN".', "Fix the header row, or pass --key COLUMN."
)
ITEMS_PATH_FORMAT = Hint(
    'Drop items_path, or use format="json".', "Drop --items-path, or use --format json."
)
NOT_ONE_DOCUMENT = Hint(
    'Check that the source is one JSON document, or pass its format (e.g. format="jsonl").',
    "Check that the source is one JSON document, or pass its format (e.g. --format jsonl).",
)
NO_ITEMS_ARRAY = Hint(
    'Check items_path: a dotted path of object keys, e.g. items_path="results.items".',
    "Check --items-path: a dotted path of object keys, e.g. --items-path results.items.",
)
ROWS_IN_AN_ARRAY = Hint(
    'If its rows are in one of them, pass items_path="NAME".',
    "If its rows are in one of them, pass --items-path NAME.",
)
PARTIAL = Hint(
    "it left partial results: partial=True loads them",
    "it left partial results: --partial loads them",
)
KEY_FIXED = Hint(
    "as the API writes them; key= does not apply", "as the API writes them; --key does not apply"
)
WAIT_LONGER = Hint("wait longer (PollPolicy(timeout=...))", "wait longer (--timeout)")
NO_LISTING = Hint("so since= cannot be used", "so --since cannot be used")
HINTS = (
    PARTIAL,
    KEY_FIXED,
    WAIT_LONGER,
    NO_LISTING,
    BAD_ROWS,
    LONG_RECORD,
    LONG_ITEM,
    CSV_HEADER,
    ITEMS_PATH_FORMAT,
    NOT_ONE_DOCUMENT,
    NO_ITEMS_ARRAY,
    ROWS_IN_AN_ARRAY,
)


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


class ParseError(ResultLoaderError):
    """A row, or the source as a whole, could not be read. Its attributes:

    - `source`: the file or URL as the report names it (a URL without its query string);
    - `line`: the row's line number from 1 (in CSV the line its record starts on), or 0 where
      no line applies (a JSON document, whose items are named by number in `reason`);
    - `offset`: the byte offset of that line in the data (after decompression), or -1 where
      it is not known (CSV, JSON documents);
    - `reason`: what is wrong, e.g. `invalid JSON: ...` or `no 'id' field`;
    - `hint`: what to do about it (a Hint, or text); the message ends with it, naming
      options the Python way (`on_error="skip"`; the CLI says `--on-error skip`).
    """

    def __init__(
        self, source: str, line: int, offset: int, reason: str, hint: Hint | str = BAD_ROWS
    ) -> None:
        self.source, self.line, self.offset, self.reason = source, line, offset, reason
        self.hint = hint
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

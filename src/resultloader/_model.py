"""The values that flow between stages: options, batches of rows, rejects and the report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from ._columns import Column
import pyarrow as pa

from ._mapping import RowMapping
from ._memory import Budget, parse_size
from ._names import check_key

OnError = Literal["fail", "skip", "quarantine"]
Format = Literal["auto", "jsonl", "json", "csv", "tsv"]
FORMATS: tuple[Format, ...] = get_args(Format)  # the one list of input formats


class ByteSize:
    """A LoadOptions field that is a number of bytes: given as an int or a size string
    (`"1MiB"`, `"512KB"`: parse_size, the syntax of --max-bytes and --max-line-bytes too),
    read as an int. (A descriptor: the dataclass's __init__ sets it, and type checkers see
    `int | str` going in and `int` coming out.)"""

    def __init__(self, default: int) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object | None, owner: type | None = None) -> int:
        if obj is None:
            return self.default  # what the dataclass takes as the field's default
        value: int = obj.__dict__[self.name]
        return value

    def __set__(self, obj: object, value: int | str) -> None:
        obj.__dict__[self.name] = positive_size(self.name, value)


class ByteSizeOrNone:
    """A ByteSize that may be None (no limit)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object | None, owner: type | None = None) -> int | None:
        value: int | None = None if obj is None else obj.__dict__[self.name]
        return value

    def __set__(self, obj: object, value: int | str | None) -> None:
        obj.__dict__[self.name] = None if value is None else positive_size(self.name, value)


def positive_size(name: str, value: int | str) -> int:
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if size < 1:
        raise ValueError(f"{name} must be positive, not {value!r}")
    return size


@dataclass(frozen=True)
class LoadOptions:
    """How to read a source: format, key field, items path, and what to do with bad rows."""

    format: Format = "auto"
    # the field holding the row's id, or a dotted path to it (response.request_id); in CSV
    # the name of a column, dots and all
    key: str = "id"
    items_path: str | None = None
    on_error: OnError = "fail"
    # sizes: an int or a size string, "1MiB" (binary units: KB = KiB), read back as an int
    max_line_bytes: ByteSize = ByteSize(256 * 1024 * 1024)
    batch_rows: int = 50_000
    max_bytes: ByteSizeOrNone = ByteSizeOrNone()  # decompressed bytes a source may yield
    # a row without the key gets the id "<index_ids>/<index>" (index from 0); True (ingest):
    # the job's own id, for items that have no key of their own; None: such a row is a bad row
    index_ids: str | bool | None = None
    delimiter: str | None = None  # CSV's field separator; None: "," for csv, a tab for tsv
    # a provider's row mapping (key path, output path, kept fields); None: the usual fields
    mapping: RowMapping | None = None
    # the load's memory beyond the interpreter ('512MiB' by default; a size as above), and
    # DuckDB's threads (by default the cores, as many as the memory allows): see _memory.Budget
    memory: int | str | None = None
    threads: int | None = None
    # ingest: load what a job that failed, expired or was cancelled left behind, where the API
    # keeps it (its status then ends in "(partial)"); without it such a job fails
    partial: bool = False
    # a provider's result file (`load --as NAME`): its lines mapped and its typed columns added
    # as `ingest NAME` does; and typed columns of one's own (`--column`), after the provider's
    provider: str | None = None
    columns: tuple[Column, ...] = ()

    @property
    def id_prefix(self) -> str | None:
        """What a keyless row's id starts with (`index_ids`, which ingest turns from True into
        the job's id)."""
        if self.index_ids is True:
            raise ValueError("index_ids=True means the job's id: for ingest; give load() a text")
        return self.index_ids or None

    def __post_init__(self) -> None:
        check_key(self.key)
        if self.on_error not in ("fail", "skip", "quarantine"):
            raise ValueError(f"on_error must be fail, skip or quarantine, not {self.on_error!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in '"\r\n'):
            raise ValueError(
                f"delimiter must be one character other than a quote or newline, "
                f"not {self.delimiter!r}"
            )
        self.budget()  # refuses a size it cannot read, or too many threads for the memory

    def budget(self) -> Budget:
        return Budget.choose(self.memory, self.threads)


def one_way_in(options: LoadOptions | None, caller: str, **shorthands: Any) -> LoadOptions:
    """`options`, or LoadOptions built from the keyword shorthands given (not None); both at
    once is refused: one would silently win over the other."""
    given = {name: value for name, value in shorthands.items() if value is not None}
    if options is None:
        return LoadOptions(**given)
    if not isinstance(options, LoadOptions):
        raise TypeError(f"{caller}(): options must be a LoadOptions, not {type(options).__name__}")
    if given:
        names = ", ".join(f"{name}=" for name in given)
        raise TypeError(
            f"{caller}(): {names} and options=LoadOptions(...) both given; "
            f"put {names} inside LoadOptions(...) instead"
        )
    return options


@dataclass(frozen=True)
class Reject:
    """A row that could not be loaded: where it was, why, and its raw text."""

    line: int
    offset: int
    reason: str
    raw: str
    # the file it was read from where one load holds several (an atomic load of many); None:
    # the load's source
    source: str | None = None


@dataclass
class RowBatch:
    """Rows in columns. `output`, `metadata` and `extra` hold exact JSON text.

    `metadata` is None where the source had no metadata (or null): sinks store `{}`.
    `seq` orders rows within a load (the last one of an id wins); it is the line number
    for line-oriented formats.
    """

    ids: list[str] = field(default_factory=list)
    outputs: list[str | None] = field(default_factory=list)
    metadata: list[str | None] = field(default_factory=list)
    urls: list[str | None] = field(default_factory=list)
    extras: list[str | None] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def append(
        self,
        id: str,
        output: str | None,
        metadata: str | None,
        url: str | None,
        extra: str | None,
        seq: int,
    ) -> None:
        self.ids.append(id)
        self.outputs.append(output)
        self.metadata.append(metadata)
        self.urls.append(url)
        self.extras.append(extra)
        self.seq.append(seq)

    def extend(self, other: RowBatch) -> None:
        """Append `other`'s rows and rejects after this batch's."""
        self.ids.extend(other.ids)
        self.outputs.extend(other.outputs)
        self.metadata.extend(other.metadata)
        self.urls.extend(other.urls)
        self.extras.extend(other.extras)
        self.seq.extend(other.seq)
        self.rejects.extend(other.rejects)

    def rows(self) -> Iterator[tuple[str, str | None, str, str | None, str | None]]:
        """(id, output, metadata, url, extra) with metadata defaulted to '{}'."""
        for i in range(len(self.ids)):
            yield (
                self.ids[i],
                self.outputs[i],
                self.metadata[i] or "{}",
                self.urls[i],
                self.extras[i],
            )

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table (seq, id, output, metadata, url, extra), all text but seq;
        metadata stays None where the source had none."""
        return pa.table(
            {
                "seq": pa.array(self.seq, pa.int64()),
                "id": pa.array(self.ids, pa.string()),
                "output": pa.array(self.outputs, pa.string()),
                "metadata": pa.array(self.metadata, pa.string()),
                "url": pa.array(self.urls, pa.string()),
                "extra": pa.array(self.extras, pa.string()),
            }
        )

    def stats(self) -> BatchStats:
        return BatchStats(
            rows=len(self.ids),
            null_outputs=self.outputs.count(None),
            missing_metadata=self.metadata.count(None),
        )


@dataclass
class BatchStats:
    rows: int = 0
    null_outputs: int = 0
    missing_metadata: int = 0


@dataclass(frozen=True)
class CommitResult:
    """What a sink did at commit. None means the sink cannot tell.

    `null_outputs` and `missing_metadata`, when given, replace the pipeline's tallies: a sink
    that reads JSONL itself may count them once over all rows rather than chunk by chunk.
    """

    upserted: int | None = None
    unchanged: int | None = None
    duplicates: int | None = None
    null_outputs: int | None = None
    missing_metadata: int | None = None
    # with typed columns `status` and `total_tokens`: the rows by status, the tokens
    statuses: dict[str, int] | None = None
    tokens: int | None = None


# An atomic load of many sources numbers its rows `place << SEQ_BITS` on: the place of the row's
# source in `LoadInfo.sources` above these bits, the row's own number below.
SEQ_BITS = 40


@dataclass(frozen=True)
class LoadInfo:
    """What a sink is told when a load begins."""

    source: str
    options: LoadOptions
    provider: str | None = None
    job_id: str | None = None
    job_status: str | None = None  # the job's final status, for the report and the ledger
    # what identifies the source's content (size and ETag or mtime), for the ledger: a re-run
    # of `load_many` skips a source committed with the same version
    version: str | None = None
    # the format the source is read as (jsonl, json, csv, tsv), once the load has decided it;
    # None for rows that are not read from one source as they come (parts of many sources)
    format: str | None = None
    # an atomic load of many sources: each one's name, so that every row's `_source` names the
    # one it came from (by its seq: SEQ_BITS); `source` names the whole set, for the ledger
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.provider is None:  # `load --as NAME`: the provider's file
            object.__setattr__(self, "provider", self.options.provider)


@dataclass
class LoadReport:
    """The outcome of one load: counts, bytes and time. `status` is the job's, for ingest.

    `bytes_read` counts the bytes as read (compressed, for a compressed source), `data_bytes`
    the data after decompression. `format` is the format the source was read as.
    """

    source: str
    rows_read: int = 0
    rows_upserted: int | None = None
    rows_unchanged: int | None = None
    null_outputs: int = 0
    missing_metadata: int = 0
    duplicates: int | None = None
    bad_rows: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    provider: str | None = None
    job_id: str | None = None
    status: str | None = None
    data_bytes: int = 0
    compression: str | None = None
    format: str | None = None
    # with typed columns: the rows by their `status` column, the sum of `total_tokens`
    statuses: dict[str, int] | None = None
    tokens: int | None = None
    # a load without --as whose rows had no output but whose lines look like a provider's
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = [_counted(self.rows_read, "row") + " read"]
        if self.rows_upserted is None:  # a function sink: it does not say what it stored
            parts[0] += " and passed to the sink"
        else:
            parts.append(f"{self.rows_upserted:,} upserted")
        if self.rows_unchanged:
            parts.append(f"{self.rows_unchanged:,} unchanged")
        if self.duplicates:
            parts.append(_counted(self.duplicates, "duplicate") + " collapsed")
        parts += self._what_the_rows_hold()
        if self.bad_rows:
            parts.append(_counted(self.bad_rows, "bad row"))
        size = human_size(self.data_bytes)
        if self.compression:
            size += f" ({human_size(self.bytes_read)} {self.compression})"
        rate = ""
        if self.seconds >= MIN_RATE_SECONDS:  # a rate over a blink of time means nothing
            rate = f" ({self.rows_read / self.seconds:,.0f} rows/s)"
        head = f"{self.provider} {self.job_id} ({self.status}): " if self.job_id else ""
        hint = f"\n{self.hint}" if self.hint else ""
        return f"{head}{', '.join(parts)}; {size} in {self.seconds:.2f}s{rate}{hint}"

    def _what_the_rows_hold(self) -> list[str]:
        """A provider's rows by status and their tokens; else null outputs and missing
        metadata, where the rows have those fields at all (none with either is no news)."""
        if self.statuses is not None:
            said = [f"{n:,} {status}" for status, n in sorted(self.statuses.items())]
            return said + ([_counted(self.tokens, "token")] if self.tokens is not None else [])
        said = []
        if self.rows_read and self.null_outputs == self.rows_read:
            said.append("no row had an output" if self.format != "csv" else "")
        else:
            said.append(_counted(self.null_outputs, "null output"))
        if self.missing_metadata < self.rows_read or not self.rows_read:
            said.append(f"{self.missing_metadata:,} without metadata")
        return [s for s in said if s]


MIN_RATE_SECONDS = 1.0


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def human_size(n: float) -> str:
    """Bytes in binary units, as the summary and the progress bar both show them."""
    if n < 2**10:
        return f"{n:,.0f} bytes"
    if n < 2**20:
        return f"{n / 2**10:,.1f} KiB"
    if n < 2**30:
        return f"{n / 2**20:,.1f} MiB"
    return f"{n / 2**30:,.2f} GiB"

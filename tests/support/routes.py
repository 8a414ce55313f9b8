"""Every route a row can take, run on the same rows, ending in what each route stored as text.

The routes: JSONL read by DuckDB's JSON functions (`fast`), JSONL read by the exact Python
parser (`exact`: the DuckDB sink declines every chunk), JSONL through the Python API into a sink
that keeps the text it is given (`api`), a top-level array read by DuckDB (`array`), a
`{"data": [...]}` document and an items path read by ijson (`data`, `items`), and a CSV file
whose `output` cells hold the rows' outputs (`csv`). Rows are JSON objects (bytes); each route
writes them as its format does, into a file named after the format (errors must name it).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb

import resultloader
from resultloader import DuckDBSink, LoadOptions, ParseError
from resultloader._model import CommitResult, LoadInfo, LoadReport, Reject, RowBatch
from resultloader.sinks import SinkCapabilities

JSONL_ROUTES = ("fast", "exact", "api")
DOCUMENT_ROUTES = ("array", "data", "items")
ROUTES = JSONL_ROUTES + DOCUMENT_ROUTES + ("csv",)
Row = tuple[str | None, str | None, str | None, str | None]  # output, metadata, url, extra


class PythonOnly(DuckDBSink):
    """The DuckDB sink declining every chunk: the pipeline's exact Python parser reads them."""

    def write_jsonl(self, chunk: Any) -> None:
        return None


class TextSink:
    """A Python API sink keeping the rows' JSON text as the loader hands it over."""

    capabilities = SinkCapabilities(keeps_rejects=True)

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.rejects: list[Reject] = []
        self._pending: dict[str, Row] = {}

    def begin(self, info: LoadInfo) -> None:
        self._pending, self.rejects = {}, []

    def write(self, batch: RowBatch) -> None:
        for row_id, output, metadata, url, extra in batch.rows():
            self._pending[row_id] = (output, metadata or "{}", url, extra)
        self.rejects.extend(batch.rejects)

    def commit(self, report: LoadReport | None = None) -> CommitResult:
        self.rows = self._pending
        return CommitResult(upserted=len(self.rows), unchanged=0, duplicates=0)

    def abort(self, error: str | None = None) -> None:
        self._pending, self.rejects = {}, []


@dataclass
class Outcome:
    table: dict[str, Row] | None  # None: the load failed
    rejects: list[tuple[int, str]]  # (line or item, reason)
    error: ParseError | None = None


def write_source(route: str, rows: list[bytes], folder: Path) -> tuple[Path, LoadOptions]:
    """The rows as the route's file. JSONL cannot hold a raw line feed inside a row: there each
    becomes a carriage return, which JSON reads the same way (blank outside strings, a control
    character refused inside them)."""
    if route in JSONL_ROUTES:
        path = folder / "rows.jsonl"
        path.write_bytes(b"".join(row.replace(b"\n", b"\r") + b"\n" for row in rows))
        return path, LoadOptions(format="jsonl")
    if route == "csv":
        path = folder / "rows.csv"
        path.write_bytes(_as_csv(rows))
        return path, LoadOptions(format="csv")
    path = folder / "rows.json"
    if route == "array":
        path.write_bytes(b"[" + b",\n".join(rows) + b"]")
        return path, LoadOptions(format="json")
    if route == "items":
        path.write_bytes(b'{"meta":{"n":1},"r":{"rows":[' + b",".join(rows) + b"]}}")
        return path, LoadOptions(format="json", items_path="r.rows")
    path.write_bytes(b'{"status":"ok","data":[' + b", ".join(rows) + b"]}")
    return path, LoadOptions(format="json")


_ROW = re.compile(rb'\{"id":"([^"]*)","output":(.*)\}', re.DOTALL)


def _as_csv(rows: list[bytes]) -> bytes:
    """Rows of the form {"id":"...","output":...} as CSV: the output's text in its cell."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "output"])
    for row in rows:
        found = _ROW.fullmatch(row)
        assert found, row
        writer.writerow([x.decode("utf-8", "surrogateescape") for x in found.groups()])
    return text.getvalue().encode("utf-8", "surrogateescape")


def run(route: str, rows: list[bytes], folder: Path, on_error: str = "quarantine") -> Outcome:
    """Load `rows` by `route` with `on_error`; the table as stored text, and the rejects."""
    path, options = write_source(route, rows, folder)
    options = replace(options, on_error=on_error)  # type: ignore[arg-type]
    con = duckdb.connect()
    sink: Any = (
        TextSink() if route == "api" else (PythonOnly if route == "exact" else DuckDBSink)(con)
    )
    try:
        resultloader.load(str(path), sink, options=options)
    except ParseError as exc:
        return Outcome(None, [], exc)
    if isinstance(sink, TextSink):
        return Outcome(sink.rows, sorted((r.line, r.reason) for r in sink.rejects))
    got = con.execute("SELECT id, output, metadata, url, extra FROM results").fetchall()
    kept = on_error == "quarantine"  # only a quarantining load makes the rejects table
    rejects = con.execute("SELECT line, reason FROM results_rejects").fetchall() if kept else []
    return Outcome({i: (o, m, u, e) for i, o, m, u, e in got}, sorted(rejects))

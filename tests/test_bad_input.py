"""The bad-input corpus (tests/corpus/, written by make_corpus.py): every case under every
`on_error` mode, into DuckDB (its native JSONL reader and the Python parser) and into MemorySink
(the Python parser alone), with the exact expected outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import LoadOptions, ParseError
from resultloader.testing import MemorySink
from tests.support.rows import exact_numbers

CORPUS = Path(__file__).parent / "corpus"
MODES = ["fail", "skip", "quarantine"]
SINKS = ["duckdb", "memory"]


@dataclass
class Case:
    """rows: id -> (output, metadata, extra) as JSON text (None: SQL NULL).
    rejects: (line, byte offset, reason, raw); a reason ending in '…' is a prefix: our words,
    where orjson's follow (they change between its releases). fatal: an error whatever
    on_error says."""

    rows: dict[str, tuple[str | None, str, str | None]]
    rejects: list[tuple[int, int, str, str]] = field(default_factory=list)
    fatal: str | None = None


A = {"a": ("1", "{}", None)}
NOT_AN_ID = "'id' must be a string or a number"
CASES: dict[str, Case] = {
    "malformed.jsonl": Case(
        {**A, "c": ("3", "{}", None)},
        [(2, 22, "invalid JSON: …", '{"id": "b", oops}')],
    ),
    "truncated_last_line.jsonl": Case(A, [(2, 22, "invalid JSON: …", '{"id":"b","output":{"x":')]),
    "array_line.jsonl": Case(
        {**A, "c": (None, "{}", None)}, [(2, 22, "not a JSON object (an array)", "[1,2]")]
    ),
    "scalar_lines.jsonl": Case(
        A,
        [
            (2, 22, "not a JSON object (a number)", "42"),
            (3, 25, "not a JSON object (a string)", '"text"'),
            (4, 32, "not a JSON object (a boolean)", "true"),
            (5, 37, "not a JSON object (null)", "null"),
        ],
    ),
    "no_id.jsonl": Case(A, [(2, 22, "no 'id' field", '{"output":2,"metadata":{"m":1}}')]),
    "id_types.jsonl": Case(
        {
            "42": ('"int"', "{}", None),
            "-7": (None, "{}", None),
            "123456789012345678901234567890": (None, "{}", None),
        },
        [
            (4, 73, NOT_AN_ID, '{"id":true}'),
            (5, 85, NOT_AN_ID, '{"id":null}'),
            (6, 97, NOT_AN_ID, '{"id":{"k":1}}'),
            (7, 112, NOT_AN_ID, '{"id":["a"]}'),
        ],
    ),
    "empty.jsonl": Case({}),
    "blank_lines.jsonl": Case({}),
    "crlf.jsonl": Case({"a": ('"x"', "{}", None), "b": (None, '{"k":"v"}', None)}),
    "bom.jsonl": Case({"a": ("1", "{}", None), "b": (None, "{}", None)}),
    "invalid_utf8.jsonl": Case(
        # the raw text keeps what it can: an invalid byte becomes U+FFFD
        {**A, "c": ('"\u00e9"', "{}", None)},
        [(2, 22, "invalid UTF-8", '{"id":"b","output":"caf\ufffd"}')],
    ),
    "nan_infinity.jsonl": Case(
        A,
        [
            (2, 22, "invalid JSON: …", '{"id":"b","output":NaN}'),
            (3, 46, "invalid JSON: …", '{"id":"c","output":-Infinity}'),
            (4, 76, "invalid JSON: …", '{"id":"d","output":{"x":Infinity}}'),
        ],
    ),
    "big_numbers.jsonl": Case(
        {
            "big": (
                "123456789012345678901234567890123",
                '{"neg":-98765432109876543210987654321}',
                None,
            ),
            "dec": (
                "3.14159265358979323846264338327950288419716939937510",
                '{"tiny":1.000000000000000000000000001,"e":1e400,"u64":18446744073709551616}',
                None,
            ),
            "edge": ("[9223372036854775807,-9223372036854775808,0.1,-0.0]", "{}", None),
        }
    ),
    "duplicate_keys.jsonl": Case(
        {
            "a": ("2", "{}", '{"x":{"y":2}}'),  # the last one wins, as in Python's json
            "second": ('"which id?"', "{}", None),
            "m": (None, '{"k":2}', None),
        }
    ),
    "output_types.jsonl": Case(
        {
            "string": ('"text \u00e9 \U0001f600"', "{}", None),
            "int": ("-12", "{}", None),
            "float": ("2.5e-3", "{}", None),
            "true": ("true", "{}", None),
            "false": ("false", "{}", None),
            "null": (None, "{}", None),
            "missing": (None, "{}", None),
            "array": ('[1,"two",null,[],{}]', "{}", None),
            "object": ('{"a":{"b":[{"c":null}]}}', "{}", None),
            "empty_string": ('""', "{}", None),
        }
    ),
    "missing_key_column.csv": Case(
        {}, fatal="line 1: no 'id' column in the header (found 'name', 'output')"
    ),
    "ragged.csv": Case(
        {"a": ("1", "{}", '{"score":"2"}'), "d": ("4", "{}", '{"score":"5"}')},
        [
            (3, -1, "expected 3 fields, found 2", "b,2"),
            (4, -1, "expected 3 fields, found 4", "c,3,4,5"),
        ],
    ),
    "quoted_newlines.csv": Case(
        {
            "a": ('"line1\\nline2"', "{}", None),
            "b": ('"say \\"hi\\""', "{}", None),
            "c": ('"x,y"', "{}", None),
        }
    ),
}


def decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text, parse_float=Decimal)


def expected_rows(case: Case) -> dict[str, tuple[Any, Any, Any]]:
    return {k: (decoded(o), decoded(m), decoded(e)) for k, (o, m, e) in case.rows.items()}


def run(name: str, sink_kind: str, mode: str, tmp_path: Path, **opts: Any) -> Any:
    """Load corpus file `name`; return (report or exception, rows, rejects, ledger statuses)."""
    source = opts.pop("source", None) or CORPUS / name
    tmp_path.mkdir(parents=True, exist_ok=True)
    sink: Any = MemorySink() if sink_kind == "memory" else tmp_path / "r.duckdb"
    options = LoadOptions(on_error=mode, **opts)
    try:
        outcome: Any = resultloader.load(source, sink, options=options)
    except resultloader.ResultLoaderError as exc:
        outcome = exc
    if sink_kind == "memory":
        fields = ("output", "metadata", "extra")
        rows = {k: tuple(exact_numbers(r[f]) for f in fields) for k, r in sink.rows.items()}
        rejects = [(r.line, r.offset, r.reason, r.raw) for r in sink.rejects]
        return outcome, rows, rejects, None
    return (outcome, *read_db(tmp_path / "r.duckdb"))


def read_db(db: Path) -> tuple[dict[str, Any], list[Any], list[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        rows, rejects = {}, []
        if "results" in found:
            for row_id, o, m, e in con.execute(
                "SELECT id, output, metadata, extra FROM results"
            ).fetchall():
                rows[row_id] = (decoded(o), decoded(m), decoded(e))
        if "results_rejects" in found:
            rejects = con.execute(
                "SELECT line, byte_offset, reason, raw FROM results_rejects ORDER BY line"
            ).fetchall()
        ledger = [r[0] for r in con.execute("SELECT status FROM _resultloader_loads").fetchall()]
        return rows, rejects, ledger
    finally:
        con.close()


def same_rejects(got: list[Any], want: list[tuple[int, int, str, str]]) -> bool:
    if len(got) != len(want):
        return False
    for (gl, go, gr, graw), (wl, wo, wr, wraw) in zip(got, want, strict=True):
        reason_ok = gr.startswith(wr[:-1]) if wr.endswith("…") else gr == wr
        if (gl, go, graw) != (wl, wo, wraw) or not reason_ok:
            return False
    return True


@pytest.mark.parametrize("sink_kind", SINKS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus(name: str, mode: str, sink_kind: str, tmp_path: Path) -> None:
    case = CASES[name]
    outcome, rows, rejects, ledger = run(name, sink_kind, mode, tmp_path)
    if case.fatal or (case.rejects and mode == "fail"):
        assert isinstance(outcome, ParseError)
        where = case.fatal or f"line {case.rejects[0][0]}"
        assert f"{CORPUS / name}: {where}" in str(outcome)
        if not case.fatal:
            assert str(outcome).split(": ", 2)[2].startswith(case.rejects[0][2].rstrip("…"))
        assert (rows, rejects) == ({}, [])  # nothing committed
        assert ledger in (None, [], ["failed"])
        return
    assert not isinstance(outcome, Exception), outcome
    assert rows == expected_rows(case)
    assert outcome.rows_read == len(case.rows)
    assert outcome.bad_rows == len(case.rejects)
    if mode == "quarantine":
        assert same_rejects(rejects, case.rejects), rejects
    else:
        assert rejects == []
    assert ledger in (None, ["committed"])


def test_big_numbers_are_stored_as_the_source_wrote_them(tmp_path: Path) -> None:
    resultloader.load(CORPUS / "big_numbers.jsonl", tmp_path / "r.duckdb")
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    got = dict(con.execute("SELECT id, output FROM results").fetchall())
    source = (CORPUS / "big_numbers.jsonl").read_text()
    for row_id, text in got.items():
        assert f'"output":{text}' in source, (row_id, text)


def test_nested_duplicate_keys_are_the_one_documented_exception(tmp_path: Path) -> None:
    # docs/guarantees.md, "The one exception": finding a repeated key at every depth would
    # cost a second parse of every nested object; the native path keeps such an object as
    # written (nothing is lost, SQL's ->> then reads the first), Python's routes keep the last,
    # as json does
    resultloader.load(CORPUS / "duplicate_keys.jsonl", tmp_path / "r.duckdb")
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    got = con.execute("SELECT metadata, metadata->>'k' FROM results WHERE id = 'm'").fetchone()
    assert got == ('{"k":1,"k":2}', "1")
    sink = MemorySink()
    resultloader.load(CORPUS / "duplicate_keys.jsonl", sink)
    assert sink.rows["m"]["metadata"] == {"k": 2}


# -- generated at run time: too big to keep ---------------------------------------------------


def test_a_50_mb_single_line_loads_whole(tmp_path: Path) -> None:
    text = "x" * (50 * 2**20)
    path = tmp_path / "big.jsonl"
    path.write_text('{"id":"a"}\n{"id":"big","output":"' + text + '"}\n')
    report = resultloader.load(path, tmp_path / "r.duckdb")
    assert report.rows_read == 2
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    length = con.execute("SELECT length(output->>'$') FROM results WHERE id = 'big'").fetchone()
    assert length == (len(text),)


@pytest.mark.parametrize("mode", MODES)
def test_a_line_over_max_line_bytes_stops_the_load_whatever_on_error_says(tmp_path, mode):
    # longer than a read chunk (16 MiB): the line cannot be held, so not quarantined either
    path = tmp_path / "big.jsonl"
    path.write_text('{"id":"a"}\n{"id":"big","output":"' + "x" * (20 * 2**20) + '"}\n')
    options = LoadOptions(on_error=mode, max_line_bytes=4 * 2**20)
    with pytest.raises(ParseError, match=r"line 2 .*longer than max_line_bytes \(4,194,304"):
        resultloader.load(path, tmp_path / "r.duckdb", options=options)
    assert read_db(tmp_path / "r.duckdb")[:2] == ({}, [])


@pytest.mark.parametrize("sink_kind", SINKS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", ["array", "object"])
def test_10000_levels_of_nesting_are_a_bad_row(tmp_path, sink_kind, mode, value):
    deep = (
        "[" * 10_000 + "]" * 10_000 if value == "array" else '{"a":' * 10_000 + "1" + "}" * 10_000
    )
    line = '{"id":"deep","output":' + deep + "}"
    path = tmp_path / "deep.jsonl"
    path.write_text('{"id":"a","output":1}\n' + line + "\n")
    outcome, rows, rejects, _ = run("", sink_kind, mode, tmp_path, source=path)
    if mode == "fail":
        assert isinstance(outcome, ParseError)
        assert "line 2 (byte 22): invalid JSON: nested too deeply" in str(outcome)
        return
    assert rows == expected_rows(Case(A)) and outcome.bad_rows == 1
    if mode == "quarantine":
        assert rejects == [(2, 22, "invalid JSON: nested too deeply", line)]


@pytest.mark.parametrize("depth", [254, 255])
def test_the_depth_limit_is_the_same_on_both_paths(tmp_path, depth):
    line = '{"id":"d","output":' + "[" * depth + "]" * depth + "}\n"
    path = tmp_path / "d.jsonl"
    path.write_text(line)
    got = []
    for sink_kind in SINKS:
        outcome, rows, _, _ = run("", sink_kind, "skip", tmp_path / sink_kind, source=path)
        got.append((outcome.rows_read, outcome.bad_rows, list(rows)))
    assert got[0] == got[1] == ([(1, 0, ["d"])] if depth == 254 else [(0, 1, [])])[0]

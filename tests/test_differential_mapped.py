"""--as openai-batch, every route: DuckDB's SQL mapping of the lines (`fast`), the exact Python
parser (`exact`: the DuckDB sink declines every chunk) and the Python API (`memory`) end with the
same rows, typed columns and bad rows, whatever odd line SQL must leave to Python."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import Column, DuckDBSink, LoadOptions, ParseError, parse_column
from resultloader.parse._rows import to_python
from resultloader.parse.jsonl import not_json
from resultloader.testing import MemorySink
from tests.support.values import same_values

BODY = (
    b'{"id":"chatcmpl-1e123","model":"gpt-4o-mini","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"hi \\u201cthere\\u201d \xf0\x9f\x99\x82"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,'
    b'"total_tokens":12}}'
)


def line(custom_id: bytes = b'"r1"', status: bytes = b"200", body: bytes = BODY) -> bytes:
    response = b'{"status_code":' + status + b',"request_id":"req_1","body":' + body + b"}"
    return (
        b'{"id":"batch_req_1","custom_id":'
        + custom_id
        + b',"response":'
        + response
        + (b',"error":null}')
    )


FAILED = (
    b'{"id":"batch_req_2","custom_id":"r2","response":{"status_code":400,"request_id":"req_2",'
    b'"body":{"error":{"message":"bad","type":"invalid_request_error","param":null,'
    b'"code":null}}},"error":null}'
)
EXPIRED = (
    b'{"id":"batch_req_3","custom_id":"r3","response":null,"error":{"code":"batch_expired",'
    b'"message":"This request could not be executed before the completion window expired."}}'
)
CASES = {
    "plain answers and failures": [line(), FAILED, EXPIRED],
    "the status code as a string": [line(status=b'"200"')],
    "the status code as a float": [line(status=b"200.0")],
    "the status code true": [line(status=b"true")],
    "no status code": [b'{"custom_id":"r1","response":{"body":{"x":1}}}'],
    "a body without a status code, between kept fields": [
        b'{"id":"b1","custom_id":"r1","response":{"body":{"x":1}},"error":{"code":"e"}}'
    ],
    "an integer custom_id": [line(custom_id=b"12")],
    "a -0 custom_id": [line(custom_id=b"-0")],
    "a 19-digit custom_id": [line(custom_id=b"9223372036854775807")],
    "a custom_id beyond 64 bits": [line(custom_id=b"9223372036854775808")],
    "a float custom_id": [line(custom_id=b"1.5")],
    "a null custom_id": [line(custom_id=b"null")],
    "no custom_id": [b'{"id":"x","response":null,"error":null}'],
    "custom_id twice": [line().replace(b'"custom_id":"r1"', b'"custom_id":"a","custom_id":"b"')],
    "status_code twice": [
        line().replace(b'"status_code":200', b'"status_code":500,"status_code":200')
    ],
    "keys in another order": [
        b'{"custom_id":"r1","error":null,"response":{"body":{"a":1},"status_code":201},"id":"b"}'
    ],
    "spaces between tokens": [b'{ "custom_id" : "r1", "response" : { "status_code" : 200 } }'],
    "an extra top-level field": [line().replace(b'"error":null', b'"error":null,"x":[1,2]')],
    "numbers a double would change": [
        line(body=b'{"usage":{"total_tokens":12},"v":[1e400,0.1000000000000000055511151231257827]}')
    ],
    "integers of 64 bits and beyond": [
        line(body=b'{"a":9223372036854775807,"b":-9223372036854775808}'),
        line(custom_id=b'"r2"', body=b'{"a":9223372036854775808,"b":-9223372036854775809}'),
    ],
    "a trailing comma": [line(), line(custom_id=b'"r2"', body=b'{"a":[1,2,]}')],
    "not JSON": [line(), b'{"custom_id":"r2","response":'],
    "an array": [b"[1,2]", line()],
    "the last of an id wins": [line(), line(body=b'{"model":"m2"}'), FAILED],
    "a blank line": [line(), b"   ", FAILED],
}
TYPED = (
    "status, model, text, finish_reason, input_tokens, output_tokens, total_tokens, error_type, "
    "error_message"
)


class _PythonOnly(DuckDBSink):
    def write_jsonl(self, chunk: Any) -> None:
        return None


def run(
    route: str, lines: list[bytes], threads: int | None = None, own: tuple[Column, ...] = ()
) -> tuple[dict[str, Any], list[tuple[int, str]], int]:
    """The table (rows, typed values, stored texts), rejects and bad rows of a load by `route`
    (`fast`, `exact`, `memory`, or `array`: the lines as a JSON document) with `own` columns
    beside the provider's."""
    data = b"".join(one + b"\n" for one in lines)
    options = LoadOptions(
        format="jsonl", on_error="quarantine", provider="openai-batch", threads=threads
    )
    options = replace(options, columns=(*options.columns, *own))
    if route == "array":
        items = [one for one in lines if one.strip()]  # a blank line is no item
        data, options = b"[" + b",".join(items) + b"]", replace(options, format="json")
    if route == "memory":
        sink = MemorySink()
        report = resultloader.load(io.BytesIO(data), sink, options=options)
        rows = {k: (r["output"], r["metadata"], r["url"], r["extra"]) for k, r in sink.rows.items()}
        return rows, sorted((r.line, r.reason) for r in sink.rejects), report.bad_rows
    con = duckdb.connect()
    sink = (_PythonOnly if route == "exact" else DuckDBSink)(con)
    try:
        report = resultloader.load(io.BytesIO(data), sink, options=options)
    except ParseError as exc:  # a document with an item that is not JSON is not JSON
        return {"_error": str(exc)}, [], 0
    typed = ", ".join([TYPED, *(c.name for c in own)])
    found = con.execute(
        f"SELECT id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR, {typed} FROM results"
    ).fetchall()
    rows = {i: (_json(o), _json(m), u, _json(e), *typed) for i, o, m, u, e, *typed in found}
    rejects = con.execute("SELECT line, reason FROM results_rejects").fetchall()
    texts = {i: (o, e) for i, o, _, _, e, *_ in found}
    return {**rows, "_texts": texts}, sorted(rejects), report.bad_rows


def _json(text: str | None) -> Any:
    return None if text is None else to_python(text)


@pytest.mark.parametrize("lines", CASES.values(), ids=CASES.keys())
def test_every_route_maps_openai_lines_the_same(lines):
    fast, exact, memory = (run(route, lines) for route in ("fast", "exact", "memory"))
    assert fast == exact  # the same rows, typed values, stored texts, rejects and counts
    rows, rejects, bad = exact
    memory_rows, memory_rejects, memory_bad = memory
    assert (rejects, bad) == (memory_rejects, memory_bad)
    assert rows.keys() - {"_texts"} == memory_rows.keys()
    for key, row in memory_rows.items():
        assert same_values(rows[key][:4], row), key


def test_the_fast_route_maps_in_sql_and_leaves_only_odd_lines_to_python():
    """The plain lines are mapped by DuckDB: a sink that refuses Python's rows still loads them."""

    class SqlOnly(DuckDBSink):
        def write(self, batch: Any) -> None:
            assert not len(batch), "a plain line went to Python"
            super().write(batch)

    data = b"".join(
        one + b"\n" for one in [line(), FAILED, EXPIRED, *CASES["integers of 64 bits and beyond"]]
    )
    con = duckdb.connect()
    report = resultloader.load(io.BytesIO(data), SqlOnly(con), LoadOptions(provider="openai-batch"))
    assert report.rows_read == 5
    assert con.execute("SELECT count(*) FROM results").fetchall() == [(3,)]  # r1 r2 r3


def test_a_typed_value_that_does_not_fit_is_refused_alike_on_both_duckdb_routes():
    lines = [line(body=b'{"usage":{"total_tokens":18446744073709551616}}'), FAILED]
    fast, exact = run("fast", lines), run("exact", lines)
    assert fast == exact
    assert fast[1] == [(1, "column 'total_tokens': not a bigint: 18446744073709551616")]


@pytest.mark.parametrize("lines", CASES.values(), ids=CASES.keys())
def test_at_16_threads_every_route_maps_openai_lines_as_at_the_default(lines):
    """DuckDB at 16 threads (a 16-core server): the same tables, typed values and rejects."""
    for route in ("fast", "exact", "array"):
        assert run(route, lines, threads=16) == run(route, lines), route


@pytest.mark.parametrize("lines", CASES.values(), ids=CASES.keys())
def test_a_json_document_of_the_lines_maps_them_as_the_exact_route(lines):
    exact, document = run("exact", lines), run("array", lines)
    if any(not_json(reason) for _, reason in exact[1]):  # the document is not JSON
        assert "_error" in document[0]
    else:
        assert document == exact


# Typed columns of one's own, read on the fast route from the line's own parse: numbers
# DuckDB writes its own way, escapes, and paths into `extra` under a kept and an
# otherwise-kept path, alike on every route
OWN = tuple(
    parse_column(spec)
    for spec in (
        "cost=output.usage.cost::decimal(12,6)",
        "score=output.v[0]::double",
        "big=output.v[2]::text",
        "blob=output.v::json",
        "escaped=output.v[1]",
        "code=extra.response.status_code::bigint",
        "request=extra.response.request_id",
        "reason=extra.response.body.error::json",
        "expiry=extra.error::json",
        "whole=output::json",
        "key=id",
    )
)
NUMBERS = line(
    body=b'{"usage":{"cost":0.00001,"total_tokens":12},"v":[1.5e2,"\\u0031\\u0032\\/",'
    b"12345678901234567890,-0.0,1E5,0.000123,25.50]}"
)
OWN_CASES = {
    "numbers DuckDB writes its own way": [NUMBERS, FAILED, EXPIRED],
    "a cost that fits": [line(body=b'{"usage":{"cost":25.125}}')],
    "a cost that does not fit": [line(body=b'{"usage":{"cost":1.1234567}}'), FAILED],
    "a long decimal elsewhere": [line(body=b'{"usage":{"cost":1.5},"x":0.1000000000000000055}')],
}


@pytest.mark.parametrize("lines", OWN_CASES.values(), ids=OWN_CASES.keys())
@pytest.mark.parametrize("threads", [None, 16])
def test_typed_columns_of_ones_own_read_from_the_line_as_every_route_reads_them(lines, threads):
    fast, exact = run("fast", lines, threads, OWN), run("exact", lines, threads, OWN)
    assert fast == exact
    assert run("array", lines, threads, OWN) == exact

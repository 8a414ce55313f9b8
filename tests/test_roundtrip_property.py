"""Property: any valid JSONL round-trips into the table exactly.

Rows get random ids (repeated ids: the last one wins), and outputs, metadata and extra fields of
every JSON type, with integers beyond 64 bits, decimals longer than a double, and any unicode.
Numbers are compared as exact Decimals of the source text.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resultloader
from resultloader.testing import MemorySink
from tests.support.rows import exact_numbers

STANDARD = ("id", "output", "metadata", "url")

numbers = st.one_of(
    st.integers(min_value=-(2**64) * 10**6, max_value=2**64 * 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 300
    ),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
extra_keys = st.text(max_size=8).filter(lambda k: k not in STANDARD)


@st.composite
def rows(draw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": draw(st.text(min_size=1, max_size=12))}
    if draw(st.booleans()):
        row["output"] = draw(json_values)
    choice = draw(st.sampled_from(["missing", "null", "object"]))
    if choice != "missing":
        row["metadata"] = (
            None if choice == "null" else draw(st.dictionaries(extra_keys, json_values, max_size=3))
        )
    if draw(st.booleans()):
        row["url"] = draw(st.one_of(st.none(), st.text(max_size=20)))
    row.update(draw(st.dictionaries(extra_keys, json_values, max_size=2)))
    return row


def to_json(value: Any) -> str:
    """JSON text, writing Decimals as their digits (stdlib json would refuse them)."""
    if isinstance(value, Decimal):
        text = str(value)
        return text if "." in text or "E" in text else text + ".0"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def expected(source: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, Any, Any]]:
    out = {}
    for row in source:  # the last row of an id wins
        rest = {k: v for k, v in row.items() if k not in STANDARD}
        out[row["id"]] = (
            exact_numbers(row.get("output")),
            exact_numbers(row.get("metadata") or {}),
            row.get("url"),
            exact_numbers(rest) or None,
        )
    return out


def decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text, parse_float=Decimal)


PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(st.lists(rows(), max_size=25))
def test_any_valid_jsonl_round_trips_into_duckdb(source: list[dict[str, Any]]) -> None:
    text = "".join(to_json(row) + "\n" for row in source).encode()
    con = duckdb.connect()
    resultloader.load(io.BytesIO(text), resultloader.DuckDBSink(con), format="jsonl")
    got = {
        row_id: (decoded(o), decoded(m), url, decoded(e))
        for row_id, o, m, url, e in con.execute(
            "SELECT id, output, metadata, url, extra FROM results"
        ).fetchall()
    }
    assert got == expected(source)


@PROFILE
@given(st.lists(rows(), max_size=25))
def test_any_valid_jsonl_round_trips_through_the_python_parser(
    source: list[dict[str, Any]],
) -> None:
    text = "".join(to_json(row) + "\n" for row in source).encode()
    sink = MemorySink()
    resultloader.load(io.BytesIO(text), sink, format="jsonl")
    got = {
        k: (
            exact_numbers(r["output"]),
            exact_numbers(r["metadata"]),
            r["url"],
            exact_numbers(r["extra"]),
        )
        for k, r in sink.rows.items()
    }
    assert got == expected(source)

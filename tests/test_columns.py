"""Typed columns: how a column is declared, and how a value is cast, exactly or refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from resultloader._columns import Column, parse_column
from resultloader.sinks.columns import (
    exact_values,
    fix_inexact,
    suspect_sql,
    typed_sql,
    values_sql,
    with_values,
)

_STAGE = (
    "CREATE TABLE s (seq BIGINT, id VARCHAR, output JSON, metadata JSON, url VARCHAR, extra JSON)"
)


def typed(column: str, output: str) -> tuple[object, str | None]:
    """(the typed value, the reason it was refused) of `output`'s field `v` as `column`."""
    col = parse_column(f"c=output.v::{column}")
    con = duckdb.connect()
    con.execute(_STAGE)
    con.execute("INSERT INTO s VALUES (1, 'a', ?, NULL, NULL, NULL)", [output])
    con.execute(f"CREATE TABLE staged AS {with_values('SELECT * FROM s', [col])}")
    fix_inexact(con, "staged", [col])  # as a sink does, for the rows DuckDB would change
    value, bad = con.execute(f"SELECT {typed_sql([col])} FROM staged").fetchone()  # type: ignore[misc]
    return (None, bad) if bad else (value, None)


@pytest.mark.parametrize(
    ("column_type", "raw", "expected"),
    [
        ("bigint", "12", 12),
        ("bigint", '"12"', 12),  # a number the API sent as a string
        ("bigint", "-9223372036854775808", -(2**63)),
        ("double", "1.5", 1.5),
        ("double", "1e300", 1e300),
        ("decimal(5,2)", "12.34", Decimal("12.34")),
        ("decimal(5,2)", "12.340", Decimal("12.34")),  # trailing zeros change nothing
        ("decimal(5,2)", '"0.5"', Decimal("0.50")),
        ("boolean", "true", True),
        ("text", '"héllo"', "héllo"),
        ("text", "12", "12"),
        ("json", '{"a":[1,2]}', '{"a":[1,2]}'),
        ("timestamp", '"2024-01-02T03:04:05+02:00"', dt.datetime(2024, 1, 2, 1, 4, 5)),
        ("timestamp", '"2024-01-02T03:04:05"', dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("timestamp", "1700000000", dt.datetime(2023, 11, 14, 22, 13, 20)),
        ("bigint", "null", None),  # a JSON null is NULL, not a bad row
    ],
)
def test_values_that_fit_their_type_are_kept_exactly(column_type, raw, expected):
    assert typed(column_type, '{"v":' + raw + "}") == (expected, None)


def test_a_missing_path_is_null():
    assert typed("bigint", '{"other":1}') == (None, None)


@pytest.mark.parametrize(
    ("column_type", "raw"),
    [
        ("bigint", "1e400"),
        ("bigint", "1.5"),  # DuckDB's own cast would round it to 2
        ("bigint", "9223372036854775808"),  # beyond 64 bits
        ("bigint", '"0x10"'),  # DuckDB's own cast reads hex
        ("bigint", '"1_000"'),
        ("double", '"abc"'),
        ("double", "1e400"),  # a double would hold inf
        ("double", "1e-400"),  # ... or 0
        ("decimal(5,2)", "12.345"),  # DuckDB's own cast would round it to 12.35
        ("decimal(5,2)", "1234.5"),
        ("decimal(5,2)", "1e25"),  # a decimal takes plain digits only (1e25 is stored 1e25)
        ("decimal(5,2)", "0.1000000000000000055511151231257827"),  # DuckDB reads 0.1
        ("boolean", '"yes"'),
        ("timestamp", '"not a time"'),
    ],
)
def test_a_value_that_does_not_fit_is_refused_naming_the_column_and_the_value(column_type, raw):
    value, bad = typed(column_type, '{"v":' + raw + "}")
    assert value is None
    assert bad is not None and bad.startswith(f"column 'c': not a {column_type}: ")
    assert bad.endswith(raw[:20]) or raw.strip('"') in bad


def test_long_decimals_are_taken_exactly_where_duckdb_would_round_them():
    col = parse_column("c=output.v::decimal(38,34)")
    output = '{"v":0.1000000000000000055511151231257827}'
    con = duckdb.connect()
    con.execute(_STAGE)
    con.execute("INSERT INTO s VALUES (1, 'a', ?, NULL, NULL, NULL)", [output])
    suspect = suspect_sql([col])
    assert suspect is not None
    assert con.execute(f"SELECT count(*) FROM s WHERE {suspect}").fetchone() == (1,)
    (text,) = exact_values([col], {"id": "a", "output": output, "metadata": None, "url": None})
    assert text == "0.1000000000000000055511151231257827"
    con.execute("CREATE TABLE v AS SELECT ?::JSON AS _v0", [text])
    assert con.execute(f"SELECT {typed_sql([col])} FROM v").fetchone() == (
        Decimal("0.1000000000000000055511151231257827"),
        None,
    )


def test_python_and_duckdb_extract_the_same_values_where_duckdb_is_exact():
    cols = [
        parse_column("t=output.choices[0].message.content"),
        parse_column("parts=output.parts[*].text::json"),
        parse_column("n=output.usage.total::bigint"),
        parse_column("e=extra.error.message"),
        parse_column("key=id"),
    ]
    row = {
        "id": "r1",
        "output": '{"choices":[{"message":{"content":"hi"}}],"parts":[{"text":"a"},{"x":1},'
        '{"text":"b"}],"usage":{"total":123456789012345678901234567890}}',
        "metadata": None,
        "url": None,
        "extra": '{"error":{"message":"boom"}}',
    }
    con = duckdb.connect()
    con.execute(_STAGE)
    con.execute("INSERT INTO s VALUES (1, ?, ?, ?, ?, ?)", list(row.values()))
    names = ", ".join(f"_v{i}::VARCHAR" for i in range(len(cols)))
    in_duckdb = con.execute(
        f"SELECT {names} FROM ({with_values('SELECT * FROM s', cols)})"
    ).fetchone()
    alone = con.execute(f"SELECT {names} FROM (SELECT *, {values_sql(cols)} FROM s)").fetchone()
    assert in_duckdb == alone  # one parse a field for all paths, or one a path: the same
    assert list(in_duckdb or ()) == exact_values(cols, row)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("tokens", "NAME=PATH"),
        ("t=usage.total", "must start at a field of the row"),
        ("t=output.x::money", "unknown column type"),
        ("t=output.x::decimal(40,2)", "precision 1-38"),
        ("id=output.x", "has a column of that name"),
        ("my col=output.x", "invalid column name"),
        ("t=id.x", "id is text"),
        ("t=output.a[", "cannot read it"),
    ],
)
def test_a_column_spec_is_refused_in_one_line_saying_why(spec, why):
    with pytest.raises(ValueError, match=why):
        parse_column(spec)


def test_paths_read_quoted_names_indexes_and_every_item():
    col = parse_column('t=output.a."b c"[2].d[*].e::json')
    assert col.paths == ('output.a."b c"[2].d[*].e',) and col.type == "json"
    assert Column("n", "NUMERIC(10, 2)", ("output.x",)).type == "decimal(10,2)"

"""Integers that fit in 64 bits never leave the fast route; numbers beyond go exact."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import DuckDBSink, LoadOptions
from resultloader.parse._rows import line_needs_exact

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import shapes


@pytest.mark.parametrize(
    "number",
    [b"9223372036854775807", b"-9223372036854775808", b"18446744073709551615", b"1234567890123"],
)
def test_a_64_bit_integer_is_read_by_the_fast_decoder(number):
    assert not line_needs_exact(b'{"id":"a","output":{"n":' + number + b',"s":"x"}}')


@pytest.mark.parametrize(
    "number",
    [
        b"18446744073709551616",  # 2^64
        b"-9223372036854775809",  # -2^63-1
        b"123456789012345678901234567890",
        b"0.1000000000000000055511151231257827",
        b"12345678901234567e2",
        b"1e-400",
    ],
)
def test_a_number_orjson_would_change_goes_to_the_exact_decoder(number):
    assert line_needs_exact(b'{"id":"a","output":' + number + b"}")


class _SqlOnly(DuckDBSink):
    """A DuckDB sink that fails if any row reaches it from the Python parser."""

    def write(self, batch: Any) -> None:
        assert not len(batch), "a line went to the Python parser"
        super().write(batch)


@pytest.mark.parametrize("provider", [None, "openai-batch"])
def test_snowflake_ids_are_loaded_by_duckdb_and_kept_as_written(provider):
    lines = list(shapes.snowflake_rows(400))
    if provider:  # the same ids in OpenAI answers' bodies
        lines = [
            b'{"id":"b","custom_id":"c%d","response":{"status_code":200,"request_id":"r",'
            b'"body":%s},"error":null}' % (i, line)
            for i, line in enumerate(lines)
        ]
    assert any(b"author_id" in line for line in lines)
    con = duckdb.connect()
    data = b"".join(line + b"\n" for line in lines)
    resultloader.load(io.BytesIO(data), _SqlOnly(con), LoadOptions(provider=provider))
    stored = con.execute("SELECT output::VARCHAR FROM results").fetchall()
    big = [text for (text,) in stored if text and "author_id" in text]
    written = {
        line.split(b'"author_id":')[1].split(b"}")[0] for line in lines if b"author_id" in line
    }
    found = {text.split('"author_id":')[1].split("}")[0].encode() for text in big}
    assert found <= written and len(found) > 100

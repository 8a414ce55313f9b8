"""JSONL: cutting a stream into chunks of whole lines, and parsing a chunk into columns."""

from __future__ import annotations

import io

import orjson
import pytest

from resultloader import LoadOptions, ParseError, RowBatch
from resultloader.parse import JsonlChunk, parse_chunk
from resultloader.parse.jsonl import iter_chunks
from tests.support.rows import merge_batches

BOM = b"\xef\xbb\xbf"


def parse_all(data: bytes, chunk_bytes: int, **options: object) -> RowBatch:
    """Chunk `data` with `chunk_bytes` reads, parse every chunk, and merge the batches."""
    opts = LoadOptions(**options)  # type: ignore[arg-type]
    chunks = iter_chunks(io.BytesIO(data), "f.jsonl", opts, chunk_bytes=chunk_bytes)
    return merge_batches(parse_chunk(chunk, opts) for chunk in chunks)


# Line 1 ok, 2 blank, 3 ok, 4 whitespace, 5 not JSON, 6 an array, 7 no id, 8 ok without newline.
MIXED = (
    b'{"id":"a","output":1}\r\n'
    b"\r\n"
    b'{"id":"b","output":{"x":[1,2]},"metadata":{"m":true},"url":"https://u/b"}\n'
    b"   \t \n"
    b"not json\r\n"
    b"[1,2]\n"
    b'{"output":3}\n'
    b'{"id":"c"}'
)


def offset_of(data: bytes, line: bytes) -> int:
    return data.index(b"\n" + line) + 1


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 4, 7, 16, 64, 1 << 20])
def test_rows_line_numbers_and_offsets_do_not_depend_on_chunk_size(chunk_bytes):
    got = parse_all(MIXED, chunk_bytes, on_error="skip")
    assert got.ids == ["a", "b", "c"]
    assert got.seq == [1, 3, 8]
    assert got.outputs == ["1", '{"x":[1,2]}', None]
    assert got.metadata == [None, '{"m":true}', None]
    assert got.urls == [None, "https://u/b", None]
    assert [(r.line, r.offset) for r in got.rejects] == [
        (5, offset_of(MIXED, b"not json")),
        (6, offset_of(MIXED, b"[1,2]")),
        (7, offset_of(MIXED, b'{"output":3}')),
    ]


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 4, 5, 1 << 20])
def test_a_bom_is_skipped_and_offsets_still_count_it(chunk_bytes):
    data = BOM + b'{"id":"a"}\nbad\n{"id":"b"}\n'
    got = parse_all(data, chunk_bytes, on_error="skip")
    assert got.ids == ["a", "b"]
    assert [(r.line, r.offset, r.raw) for r in got.rejects] == [(2, len(BOM) + 11, "bad")]


def test_crlf_lines_parse_and_the_raw_reject_has_no_carriage_return():
    got = parse_all(b'{"id":"a"}\r\nnope\r\n{"id":"b"}\r\n', 1 << 20)
    assert got.ids == ["a", "b"]
    assert [r.raw for r in got.rejects] == ["nope"]


def test_reasons_name_what_is_wrong():
    got = parse_all(MIXED, 1 << 20)
    reasons = [r.reason for r in got.rejects]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1].startswith("not a JSON object") and "array" in reasons[1]
    assert reasons[2] == "no 'id' field"


def test_raw_text_of_rejects_is_the_line():
    got = parse_all(MIXED, 5)
    assert [r.raw for r in got.rejects] == ["not json", "[1,2]", '{"output":3}']


def test_custom_key_moves_id_to_extra():
    data = b'{"custom_id":"req-1","id":7,"output":{"ok":true},"extra_field":"x"}\n'
    got = parse_all(data, 1 << 20, key="custom_id")
    assert got.ids == ["req-1"]
    assert orjson.loads(got.extras[0]) == {"id": 7, "extra_field": "x"}


def test_custom_key_missing_is_a_reject_even_when_id_is_there():
    got = parse_all(b'{"id":"a"}\n', 1 << 20, key="custom_id")
    assert got.ids == []
    assert got.rejects[0].reason == "no 'custom_id' field"


@pytest.mark.parametrize(
    ("literal", "text"),
    [
        (b"42", "42"),
        (b"-3", "-3"),
        (b"123456789012345678901234567890", "123456789012345678901234567890"),
        (b'"007"', "007"),
    ],
)
def test_ids_are_text_and_numbers_keep_their_digits(literal, text):
    got = parse_all(b'{"id":' + literal + b"}\n", 1 << 20)
    assert got.ids == [text]


@pytest.mark.parametrize("literal", [b"null", b"true", b"[1]", b'{"a":1}'])
def test_an_id_that_is_not_a_string_or_number_is_a_reject(literal):
    got = parse_all(b'{"id":' + literal + b"}\n", 1 << 20)
    assert got.ids == []
    assert "must be a string or a number" in got.rejects[0].reason


def test_extra_fields_are_kept_exactly_and_standard_ones_are_not_repeated():
    line = (
        b'{"id":"a","output":null,"metadata":null,"url":null,'
        b'"score":0.1000000000000000055511151231257827,"n":123456789012345678901234567890,'
        b'"nested":{"k":[1,"two"]}}\n'
    )
    got = parse_all(line, 1 << 20)
    assert (got.outputs, got.metadata, got.urls) == ([None], [None], [None])
    assert got.extras == [
        '{"score":0.1000000000000000055511151231257827,'
        '"n":123456789012345678901234567890,"nested":{"k":[1,"two"]}}'
    ]


def test_no_other_fields_means_extra_is_none():
    got = parse_all(b'{"id":"a","output":1,"metadata":{},"url":"u"}\n', 1 << 20)
    assert got.extras == [None]


def test_a_url_that_is_not_text_goes_to_extra_rather_than_being_lost():
    got = parse_all(b'{"id":"a","url":{"href":"h"}}\n', 1 << 20)
    assert got.urls == [None]
    assert orjson.loads(got.extras[0]) == {"url": {"href": "h"}}


def test_a_number_beyond_a_double_is_kept_as_written():
    got = parse_all(b'{"id":"a","output":[1e400,-1e999]}\n', 1 << 20)
    assert got.outputs == ["[1e400,-1e999]"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_rejected(literal):
    got = parse_all(b'{"id":"a","output":' + literal + b"}\n", 1 << 20)
    assert got.ids == []
    assert got.rejects[0].reason.startswith("invalid JSON")


def test_invalid_utf8_is_a_reject_with_a_reason():
    got = parse_all(b'{"id":"a","output":"\xff"}\n{"id":"b"}\n', 1 << 20)
    assert got.ids == ["b"]
    assert "UTF-8" in got.rejects[0].reason


def test_a_line_longer_than_the_limit_stops_the_load_with_its_line_number():
    data = b'{"id":"a"}\n{"id":"' + b"x" * 100 + b'"}\n'
    with pytest.raises(ParseError) as info:
        parse_all(data, 8, max_line_bytes=50)
    assert info.value.line == 2
    assert info.value.offset == 11


def test_chunks_hold_whole_lines_and_cover_the_input_exactly():
    data = b"".join(b'{"id":"%d"}\n' % i for i in range(50))
    opts = LoadOptions()
    chunks = list(iter_chunks(io.BytesIO(data), "f", opts, chunk_bytes=37))
    assert b"".join(c.data for c in chunks) == data
    for chunk in chunks:
        assert chunk.data.endswith(b"\n")
        assert data[chunk.offset : chunk.offset + len(chunk.data)] == chunk.data
        assert chunk.first_line == data[: chunk.offset].count(b"\n") + 1


def test_parse_chunk_uses_the_chunks_first_line_and_offset():
    chunk = JsonlChunk("f", b'{"id":"a"}\nbad\n', first_line=100, offset=5000)
    got = parse_chunk(chunk, LoadOptions())
    assert got.seq == [100]
    assert [(r.line, r.offset) for r in got.rejects] == [(101, 5011)]


def test_an_empty_stream_yields_nothing():
    assert list(iter_chunks(io.BytesIO(b""), "f", LoadOptions())) == []
    assert list(iter_chunks(io.BytesIO(BOM), "f", LoadOptions())) == []

"""CSV: header, key column, ragged rows, quoted newlines, JSON cells, extra columns, BOM."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resultloader import LoadOptions, ParseError, RowBatch
from resultloader.parse.csv import parse_csv
from tests.support.rows import merge_batches

BOM = b"\xef\xbb\xbf"


def parse(text: str | bytes, **options: object) -> RowBatch:
    data = text.encode() if isinstance(text, str) else text
    return merge_batches(parse_csv(io.BytesIO(data), "b.csv", LoadOptions(**options)))  # type: ignore[arg-type]


def test_header_names_the_columns_and_the_row_model_applies():
    got = parse(
        "id,output,metadata,url\n"
        'a,"{""labels"":[1]}","{""source"":""backfill""}",https://u/a\n'
        "b,,,\n"
    )
    assert got.ids == ["a", "b"]
    assert got.outputs == ['{"labels":[1]}', None]
    assert got.metadata == ['{"source":"backfill"}', None]
    assert got.urls == ["https://u/a", None]
    assert got.extras == [None, None]


def test_columns_in_any_order_and_extra_columns_go_to_extra_as_text():
    got = parse("score,url,id,decision\n0.9,https://u,x1,approve\n")
    assert got.ids == ["x1"]
    assert got.urls == ["https://u"]
    assert orjson.loads(got.extras[0]) == {"score": "0.9", "decision": "approve"}


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("hello", '"hello"'),
        ("42", "42"),
        ("true", "true"),
        ('"[1,2]"', "[1,2]"),
        ('"""quoted"""', '"quoted"'),
        ("NaN", '"NaN"'),
        ("null", None),
        ("", None),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
        ("1e400", "1e400"),  # a number, like 123: read as a JSONL line would be (issue 9)
        ("1e-400", "1e-400"),
        ("-Infinity", '"-Infinity"'),
        ('"[1,2,]"', '"[1,2,]"'),  # not JSON: text
        ('"""\\ud800"""', '"\\"\\\\ud800\\""'),  # a lone surrogate is not JSON: text
    ],
)
def test_output_cells_holding_json_are_that_json_and_other_text_is_a_string(cell, stored):
    assert parse(f"id,output\na,{cell}\n").outputs == [stored]


def test_custom_key_column_and_id_becomes_an_extra_column():
    got = parse("custom_id,id,output\nreq-1,7,1\n", key="custom_id")
    assert got.ids == ["req-1"]
    assert got.extras == ['{"id":"7"}']


def test_ids_are_kept_as_written():
    assert parse("id\n007\n1e3\n").ids == ["007", "1e3"]


def test_a_missing_key_column_is_a_clear_error_naming_the_columns():
    with pytest.raises(ParseError) as info:
        parse("custom_id,output\nx,1\n")
    message = str(info.value)
    assert "no 'id' column" in message
    assert "'custom_id'" in message and "'output'" in message
    assert 'key="COLUMN"' in message
    assert "on_error" not in message  # skipping rows cannot fix a header


def test_a_dotted_key_names_a_column_whose_name_has_the_dot():
    # a CSV has no nesting: --key response.request_id is the header's `response.request_id`
    got = parse("response.request_id,output,response\nr1,1,x\n,2,y\n", key="response.request_id",
                on_error="skip")  # fmt: skip
    assert got.ids == ["r1"] and got.extras == ['{"response":"x"}']
    assert [r.reason for r in got.rejects] == ["empty 'response.request_id'"]


def test_a_repeated_column_name_is_an_error():
    with pytest.raises(ParseError, match="column 'output' appears twice"):
        parse("id,output,output\na,1,2\n")


def test_ragged_rows_are_rejects_with_line_and_raw_text():
    got = parse("id,output\na,1\nb,2,surplus\nc\nd,4\n", on_error="skip")
    assert got.ids == ["a", "d"]
    assert [(r.line, r.raw, r.reason) for r in got.rejects] == [
        (3, "b,2,surplus", "expected 2 fields, found 3"),
        (4, "c", "expected 2 fields, found 1"),
    ]


def test_an_empty_key_is_a_reject():
    got = parse("id,output\n,1\nb,2\n")
    assert got.ids == ["b"]
    assert got.rejects[0].reason == "empty 'id'"


def test_a_quoted_empty_key_is_a_reject_in_a_one_column_csv_too():
    got = parse('id\na\n""\n\nb\n')
    assert got.ids == ["a", "b"]
    assert [(r.line, r.reason) for r in got.rejects] == [(3, "empty 'id'")]


def test_tsv_and_other_delimiters():
    tab = merge_batches(
        parse_csv(io.BytesIO(b"id\toutput\na\t1\nb\t2\n"), "r.tsv", LoadOptions(), "\t")
    )
    assert (tab.ids, tab.outputs) == (["a", "b"], ["1", "2"])
    semicolon = merge_batches(
        parse_csv(io.BytesIO(b"id;output\na;1,5\n"), "r.csv", LoadOptions(), ";")
    )
    assert (semicolon.ids, semicolon.outputs) == (["a"], ['"1,5"'])


def test_quoted_newlines_keep_line_numbers_right():
    text = 'id,output\na,"line one\nline two\nline three"\nb,ok\nc,"x\ny",ragged\nd,ok\n'
    got = parse(text, on_error="skip")
    assert got.ids == ["a", "b", "d"]
    assert got.outputs[0] == '"line one\\nline two\\nline three"'
    assert got.seq == [2, 5, 8]
    # a bad record is reported at the line it starts on, with its exact raw text
    assert [(r.line, r.raw) for r in got.rejects] == [(6, 'c,"x\ny",ragged')]


def test_crlf_line_endings():
    got = parse('id,output\r\na,1\r\nb,"two\r\nlines"\r\nc,3\r\n')
    assert got.ids == ["a", "b", "c"]
    assert got.seq == [2, 3, 5]
    assert got.outputs[1] == '"two\\r\\nlines"'


def test_blank_lines_are_skipped_but_counted():
    got = parse("id\n\na\n\n\nb\n")
    assert got.ids == ["a", "b"]
    assert got.seq == [3, 6]


def test_a_bom_before_the_header_is_not_part_of_the_first_column_name():
    got = parse(BOM + b"id,output\na,1\n")
    assert got.ids == ["a"]


def test_invalid_utf8_is_one_bad_row():
    got = parse(b"id,output\na,\xff\xfe\nb,2\n", on_error="skip")
    assert got.ids == ["b"]
    assert [(r.line, r.reason) for r in got.rejects] == [(2, "invalid UTF-8")]


def test_non_ascii_text_is_fine():
    got = parse("id,note\nключ,Café crème ☕\n")
    assert got.ids == ["ключ"]
    assert orjson.loads(got.extras[0]) == {"note": "Café crème ☕"}


def test_an_unterminated_quote_cannot_swallow_the_file():
    text = 'id,output\na,"never closed\n' + "b,2\n" * 100
    with pytest.raises(ParseError, match="max_line_bytes") as info:
        parse(text, max_line_bytes=64)
    assert info.value.line == 2


def test_header_only_and_empty_files_have_no_rows():
    assert len(parse("id,output\n")) == 0
    assert len(parse("")) == 0


def test_batches_are_bounded_by_batch_rows():
    text = "id\n" + "".join(f"{i}\n" for i in range(25))
    batches = list(parse_csv(io.BytesIO(text.encode()), "b", LoadOptions(batch_rows=10)))
    assert [len(b) for b in batches] == [10, 10, 5]


def test_rejects_count_towards_the_batch_size_so_memory_stays_bounded():
    text = "id,output\n" + "x\n" * 25  # every row ragged
    opts = LoadOptions(batch_rows=10, on_error="skip")
    batches = list(parse_csv(io.BytesIO(text.encode()), "b", opts))
    assert [len(b.rejects) for b in batches] == [10, 10, 5]


# no lone "\r": csv.writer with "\n" line endings leaves it unquoted, so it reads as a CRLF
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=20))
def test_any_csv_written_by_the_csv_module_reads_back_with_start_lines(rows):
    rows = [(f"k{i}", note) for i, (_, note) in enumerate(rows)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "note"])
    writer.writerows(rows)
    text = out.getvalue()
    got = parse(text)
    assert got.ids == [r[0] for r in rows]
    assert [orjson.loads(e)["note"] for e in got.extras] == [r[1] for r in rows]
    # each row starts on the line after everything written before it
    starts, line = [], 2
    for row in rows:
        starts.append(line)
        one = io.StringIO()
        csv.writer(one, lineterminator="\n").writerow(row)
        line += one.getvalue().count("\n")
    assert got.seq == starts

"""Choosing the format: by extension, by content type, by the first bytes, or as overridden."""

from __future__ import annotations

import gzip

import pytest
import zstandard

import resultloader
from resultloader import LoadOptions
from resultloader.parse import detect_format
from resultloader.sources import name_hint
from resultloader.testing import MemorySink
from tests.support.cli import run

JSONL = b'{"id":"a","output":1}\n{"id":"b","output":2}\n'
JSON_ARRAY = b'[\n  {"id": "a", "output": 1},\n  {"id": "b", "output": 2}\n]\n'
JSON_DATA = b'{\n  "status": "succeeded",\n  "data": [{"id": "a"}, {"id": "b"}]\n}\n'
CSV = b"id,output\na,1\nb,2\n"


@pytest.mark.parametrize(
    ("source", "fmt"),
    [
        ("results.jsonl", "jsonl"),
        ("results.ndjson", "jsonl"),
        ("results.jsonlines", "jsonl"),
        ("results.json", "json"),
        ("results.csv", "csv"),
        ("results.jsonl.gz", "jsonl"),
        ("results.csv.zst", "csv"),
        ("results.json.bz2", "json"),
        ("RESULTS.CSV.GZ", "csv"),
        ("https://bucket.s3.amazonaws.com/out/batch.csv?X-Amz-Signature=abc", "csv"),
        ("s3://bucket/path/results.jsonl.gz", "jsonl"),
    ],
)
def test_by_extension_even_when_the_first_bytes_say_nothing(source, fmt):
    assert detect_format(name_hint(source), None, b"") == fmt


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("application/x-ndjson", "jsonl"),
        ("application/jsonl; charset=utf-8", "jsonl"),
        ("application/json", "json"),
        ("application/geo+json", "json"),
        ("text/csv; charset=utf-8", "csv"),
        ("TEXT/CSV", "csv"),
    ],
)
def test_by_content_type_when_the_name_has_no_extension(content_type, fmt):
    assert detect_format("download", content_type, b"") == fmt


def test_the_extension_wins_over_the_content_type():
    assert detect_format("r.csv", "application/json", b"") == "csv"
    assert detect_format("r.jsonl", "text/csv", b"") == "jsonl"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (JSONL, "jsonl"),
        (JSON_ARRAY, "json"),
        (JSON_DATA, "json"),
        (b'[{"id":"a"},{"id":"b"}]', "json"),
        (b'{"id":"solo","output":1}\n', "jsonl"),
        (CSV, "csv"),
        (b"\xef\xbb\xbf" + JSONL, "jsonl"),
        (b"\n\n  " + JSONL, "jsonl"),
        (b'{"id":"a","output":1e400}\n{"id":"b"}\n', "jsonl"),
        (b'[1]\n{"id":"a"}\n', "jsonl"),
    ],
)
def test_by_first_bytes_when_name_and_content_type_say_nothing(head, fmt):
    assert detect_format("download", None, head) == fmt
    assert detect_format("download", "application/octet-stream", head) == fmt


def test_a_first_line_longer_than_the_head_is_not_mistaken_for_csv():
    head = b'{"id":"a","output":{"text":"' + b"a, b, c, " * 10_000  # cut mid-line
    assert detect_format("download", None, head) == "jsonl"
    # a row that names its id: JSONL, though a .json name or type says JSON (issue 9)
    assert detect_format("download", "application/json", head) == "jsonl"
    assert detect_format("r.json", None, head) == "jsonl"
    undecided = b'{"output":{"text":"' + b"a, b, c, " * 10_000
    assert detect_format("download", "application/json", undecided) == "json"
    assert detect_format("download", None, undecided) == "jsonl"


@pytest.mark.parametrize("name", ["download", "r.json", "-"])
def test_a_minified_data_document_is_a_json_document(name):
    head = b'{"status":"done","data":[{"id":"a"},{"id":"b"}]}'
    assert detect_format(name, None, head) == "json"
    long = b'{"data":[' + b'{"id":"a","output":"x"},' * 5000  # longer than the head
    assert detect_format(name, None, long) == "json"


def test_content_wins_over_a_json_name_for_jsonl_files():
    # many APIs name their JSONL files .json
    assert detect_format("results.json", None, JSONL) == "jsonl"
    assert detect_format("download", "application/json", JSONL) == "jsonl"
    assert detect_format("results.jsonl", None, JSON_ARRAY) == "json"


def load_into_memory(path, **kwargs):
    sink = MemorySink()
    report = resultloader.load(path, sink, **kwargs)
    return sink, report


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("download", JSONL),
        ("download", JSON_ARRAY),
        ("download", JSON_DATA),
        ("download", CSV),
        ("r.json", JSONL),
        ("r.jsonl.gz", gzip.compress(JSONL)),
        ("blob", zstandard.ZstdCompressor().compress(JSON_DATA)),
        ("blob.bin", gzip.compress(CSV)),
    ],
)
def test_load_detects_the_format_of_real_files(write, name, data):
    sink, report = load_into_memory(write(name, data))
    assert sorted(sink.rows) == ["a", "b"]
    assert report.bad_rows == 0


def test_the_format_option_overrides_detection(write):
    # a .json name and JSON-looking content, but the user says CSV
    path = write("r.json", b'id,output\n"{""x"":1}",2\n')
    sink, _ = load_into_memory(path, format="csv")
    assert sink.rows['{"x":1}']["output"] == 2


def test_overriding_with_the_wrong_format_fails_rather_than_guessing(write):
    path = write("r.csv", CSV)
    with pytest.raises(resultloader.ParseError):
        load_into_memory(path, format="json")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="format must be"):
        resultloader.LoadOptions(format="xml")  # type: ignore[arg-type]


def test_an_items_path_means_a_json_document_whatever_the_name(write):
    # one line, named .jsonl: without the items path this is one row with no id
    path = write("r.jsonl", b'{"data":{"rows":[{"id":"a"},{"id":"b"}]}}\n')
    sink, _ = load_into_memory(path, items_path="data.rows")
    assert sorted(sink.rows) == ["a", "b"]


def test_an_items_path_with_another_explicit_format_is_refused(write):
    with pytest.raises(resultloader.ParseError, match="items path applies to JSON documents"):
        load_into_memory(write("r.csv", CSV), items_path="data", format="csv")


@pytest.mark.parametrize("name", ["r.jsonl", "r.csv", "r.json", "download"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_files_are_named_as_such(write, name, encoding):
    text = '{"id":"a"}\n' if not name.endswith("csv") else "id\na\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    with pytest.raises(resultloader.ParseError, match="UTF-16"):
        load_into_memory(write(name, data))


def test_a_jsonl_name_wins_over_a_broken_first_line(write, tmp_path):
    import pytest

    import resultloader

    src = write("broken.jsonl", '{"id": "a", "output": \n{"id":"b"}\n')
    with pytest.raises(resultloader.ParseError) as caught:
        resultloader.load(src, tmp_path / "r.duckdb")
    assert caught.value.line == 1
    assert "document" not in str(caught.value)


# -- issue 9 point 6 and issue 12 point 6: enough of the content, and not text at all ---------


@pytest.mark.parametrize("name", ["download", "r.json"])
def test_a_minified_data_document_without_a_useful_name_loads_as_a_document(write, name):
    sink, report = load_into_memory(write(name, b'{"status":"ok","data":[{"id":"a"},{"id":"b"}]}'))
    assert sorted(sink.rows) == ["a", "b"] and report.bad_rows == 0


def test_a_minified_data_document_on_stdin_loads_as_a_document(tmp_path):
    done = run("load", "-", "--json", cwd=tmp_path, stdin=b'{"data":[{"id":"a"},{"id":"b"}]}')
    assert done.returncode == 0, done.stderr
    assert '"rows_upserted":2' in done.stdout


def test_a_jsonl_file_named_json_with_a_first_line_over_64_kib_loads_as_jsonl(write):
    first = b'{"id":"a","output":"' + b"x, " * 40_000 + b'"}\n'
    sink, report = load_into_memory(write("r.json", first + b'{"id":"b"}\n'))
    assert sorted(sink.rows) == ["a", "b"] and report.bad_rows == 0


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00", "Parquet"),
        (b"SQLite format 3\x00\x10\x00\x01\x01", "SQLite"),
        (b"id,output\na,\x00\x01\x02\n", "NUL bytes"),
    ],
)
@pytest.mark.parametrize("fmt", ["auto", "csv", "jsonl"])
def test_a_binary_file_is_refused_as_not_a_text_format(tmp_path, head, kind, fmt):
    (tmp_path / "data.bin").write_bytes(head + bytes(range(256)) * 4)
    done = run("load", "data.bin", "--format", fmt, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1  # one line
    assert "data.bin: not a text format we read" in done.stderr and kind in done.stderr


def test_a_tsv_is_read_as_tsv_and_delimiter_sets_the_separator(write, tmp_path):
    sink, _ = load_into_memory(write("r.tsv", b'id\toutput\na\t{"x": 1}\nb\t2\n'))
    assert sink.rows["a"]["output"] == {"x": 1} and sink.rows["b"]["output"] == 2
    sink, _ = load_into_memory(
        write("r.csv", b"id;output\na;1\n"), options=LoadOptions(delimiter=";")
    )
    assert sink.rows["a"]["output"] == 1

    (tmp_path / "p.txt").write_bytes(b"id|output\na|[1]\n")
    done = run("load", "p.txt", "--format", "csv", "--delimiter", "|", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"rows_upserted":1' in done.stdout


def test_a_delimiter_must_be_one_character():
    with pytest.raises(ValueError, match="delimiter must be one character"):
        LoadOptions(delimiter=";;")


def test_a_long_first_row_is_known_by_the_key_it_names(write):
    head = b'{"custom_id":"a","output":"' + b"x, " * 30_000  # longer than the head
    assert detect_format("r.json", None, head) == "json"  # no `id`: undecided, the name wins
    assert detect_format("r.json", None, head, key="custom_id") == "jsonl"
    sink, report = load_into_memory(
        write("r.json", head + b'"}\n{"custom_id":"b"}\n'), key="custom_id"
    )
    assert sorted(sink.rows) == ["a", "b"] and report.bad_rows == 0


def test_a_long_first_row_is_known_by_the_first_field_of_a_dotted_key():
    head = b'{"response":{"request_id":"a"},"output":"' + b"x, " * 30_000  # longer than the head
    assert detect_format("r.json", None, head, key="response.request_id") == "jsonl"
    assert detect_format("r.json", None, head, key="request.id") == "json"  # undecided

"""DuckDBSink's native JSONL path: exact numbers, rows left to Python, line numbers, dedupe."""

from __future__ import annotations

import duckdb
import pytest

import resultloader
from resultloader import ParseError
from resultloader.parse import jsonl
from resultloader.sinks.duckdb import sink as sink_module
from resultloader.sinks.duckdb.lines import split_lines
from resultloader.testing import MemorySink
from tests.support.duckdb_files import query


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of ~64 bytes: a few lines each, so every file spans many chunks."""
    monkeypatch.setattr(jsonl.iter_chunks, "__defaults__", (64,))


@pytest.fixture
def python_rows(monkeypatch):
    """The line numbers the native insert left to the Python parser."""
    seen: list[int] = []
    original = sink_module.parse_chunk

    def spy(chunk, options):
        seen.append(chunk.first_line)
        return original(chunk, options)

    monkeypatch.setattr(sink_module, "parse_chunk", spy)
    return seen


def table(db, sql="SELECT id, output, metadata, url, extra FROM results ORDER BY id"):
    return query(db, sql)


BIG_INTS = [
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
]


def test_big_integers_and_huge_exponents_stay_exact_without_python(write, tmp_path, python_rows):
    text = "".join(f'{{"id":"n{i}","output":{{"v":{v}}}}}\n' for i, v in enumerate(BIG_INTS))
    resultloader.load(write("n.jsonl", text), tmp_path / "r.duckdb")
    got = {r[0]: r[1] for r in table(tmp_path / "r.duckdb")}
    assert got == {f"n{i}": f'{{"v":{v}}}' for i, v in enumerate(BIG_INTS)}
    assert python_rows == []  # DuckDB kept them: no row needed the Python parser


@pytest.mark.parametrize(
    "number",
    [
        "0.1000000000000000055511151231257827",
        "123456789012345.67",
        "12345678901234567e2",
        "3.14159265358979323846",
        "1E+400",  # beyond a double: DuckDB keeps the text as written, Python writes 1e400
    ],
)
def test_numbers_a_double_would_change_go_to_python_and_stay_exact(
    write, tmp_path, python_rows, number
):
    text = f'{{"id":"a","output":1.5}}\n{{"id":"n","output":{{"v":{number}}}}}\n'
    resultloader.load(write("n.jsonl", text), tmp_path / "r.duckdb")
    got = {r[0]: r[1] for r in table(tmp_path / "r.duckdb")}
    stored = {"12345678901234567e2": "1234567890123456700.0", "1E+400": "1e400"}  # one text
    assert got == {"a": "1.5", "n": f'{{"v":{stored.get(number, number)}}}'}
    assert python_rows == [2]


def test_last_row_wins_across_chunks_and_python_rows(write, tmp_path, small_chunks):
    lines = [f'{{"id":"k","output":{i}}}' for i in range(20)]
    lines[7] = '{"id":"k","output":0.1000000000000000055511151231257827}'  # a Python row
    lines.append('{"id":"k","output":"last", "output":"really last"}')  # duplicate keys
    lines += [f'{{"id":"o{i}","output":{i}}}' for i in range(10)]
    report = resultloader.load(write("d.jsonl", "\n".join(lines) + "\n"), tmp_path / "r.duckdb")
    got = {r[0]: r[1] for r in table(tmp_path / "r.duckdb")}
    assert got["k"] == '"really last"'  # the later key of a line wins, as in Python
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (31, 11, 20)


def test_a_flagged_row_that_wins_is_the_last_line(write, tmp_path, small_chunks):
    lines = [f'{{"id":"k","output":{i}}}' for i in range(10)]
    lines.append('{"id":"k","output":0.1000000000000000055511151231257827}')
    resultloader.load(write("d.jsonl", "\n".join(lines) + "\n"), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb")[0][1] == "0.1000000000000000055511151231257827"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_bad_row_is_reported_with_its_true_line_and_offset(write, tmp_path, monkeypatch, chunked):
    if chunked:
        monkeypatch.setattr(jsonl.iter_chunks, "__defaults__", (64,))
    good = '{"id":"a","output":1}\n'
    text = good * 5 + "\n\r\n" + good + '{"id":"b","output":NaN}\n' + good
    with pytest.raises(ParseError) as caught:
        resultloader.load(write("b.jsonl", text), tmp_path / "r.duckdb")
    assert caught.value.line == 9
    assert caught.value.offset == len(good) * 6 + 3


def test_quarantine_keeps_true_line_numbers_across_chunks(write, tmp_path, small_chunks):
    text = '{"id":"a"}\n\n{"bad json\n{"id":"b"}\r\n7\n{"id":{"x":1}}\n{"id":"c"}\n'
    report = resultloader.load(write("q.jsonl", text), tmp_path / "r.duckdb", on_error="quarantine")
    rows = table(tmp_path / "r.duckdb", "SELECT line, byte_offset FROM results_rejects ORDER BY 1")
    assert rows == [(3, 12), (5, 35), (6, 37)]
    assert report.bad_rows == 3
    assert [r[0] for r in table(tmp_path / "r.duckdb")] == ["a", "b", "c"]


def test_blank_lines_crlf_and_extra_fields_stay_native(write, tmp_path, python_rows):
    text = '\n{"id":"a","output":null,"score":3}\r\n  \n{"id":"b","metadata":{"k":[1]}}\n\n'
    report = resultloader.load(write("c.jsonl", text), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == [
        ("a", None, "{}", None, '{"score":3}'),
        ("b", None, '{"k":[1]}', None, None),
    ]
    assert (report.rows_read, report.null_outputs, report.missing_metadata) == (2, 2, 1)
    assert python_rows == []  # blank lines are skipped, not parsed


def test_compact_lines_with_a_key_twice_go_to_python_and_other_orders_stay_native(
    write, tmp_path, python_rows
):
    lines = [
        '{"id":"a","output":1,"output":2}',  # compact, a key twice: the later one wins
        '{"id":"b","output":1,"id":"b"}',
        '{"url":"u","id":"c"}',  # the known fields in another order
        '{"id":"d","output":{"x":1},"z":0}',  # another key after them
        '{"id":"e","output":1} ',
        '{"id":"f","metadata":{},"output":[1]}',
    ]
    resultloader.load(write("k.jsonl", "\n".join(lines)), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == [
        ("a", "2", "{}", None, None),
        ("b", "1", "{}", None, None),
        ("c", None, "{}", "u", None),
        ("d", '{"x":1}', "{}", None, '{"z":0}'),
        ("e", "1", "{}", None, None),
        ("f", "[1]", "{}", None, None),
    ]
    assert python_rows == [1, 2]


def test_invalid_utf8_is_reported_by_the_python_parser(write, tmp_path):
    text = b'{"id":"a"}\n{"id":"\xff"}\n'
    with pytest.raises(ParseError) as caught:
        resultloader.load(write("u.jsonl", text), tmp_path / "r.duckdb")
    assert caught.value.line == 2


def test_reload_counts_unchanged_and_replaces_changed_rows(write, tmp_path):
    db = tmp_path / "r.duckdb"
    first = '{"id":"a","output":1}\n{"id":"b","output":2,"metadata":{}}\n{"id":"c"}\n'
    resultloader.load(write("1.jsonl", first), db)
    before = table(db, "SELECT id, _loaded_at FROM results ORDER BY id")
    second = '{"id":"a","output":1}\n{"id":"b","output":3}\n{"id":"c","metadata":null}\n'
    report = resultloader.load(write("2.jsonl", second), db)
    assert (report.rows_upserted, report.rows_unchanged) == (1, 2)
    assert [r[:2] for r in table(db)] == [("a", "1"), ("b", "3"), ("c", None)]
    after = dict(table(db, "SELECT id, _loaded_at FROM results ORDER BY id"))
    assert after["a"] == dict(before)["a"] and after["c"] == dict(before)["c"]


def test_a_json_array_lands_like_the_same_rows_as_jsonl(write, tmp_path):
    rows = [
        '{"id":"a","output":{"n":123456789012345678901234567890},"x":1}',
        '{"id":7,"output":null,"metadata":{"m":"é"}}',
        '{"id":"a","output":{"d":0.1000000000000000055511151231257827},"url":"u"}',
    ]
    as_jsonl = "".join(r + "\n" for r in rows)
    doc = "[" + ",\n ".join(rows) + "]"
    resultloader.load(write("r.jsonl", as_jsonl), tmp_path / "l.duckdb")
    report = resultloader.load(write("r.json", doc), tmp_path / "j.duckdb")
    assert table(tmp_path / "j.duckdb") == table(tmp_path / "l.duckdb")
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (3, 2, 1)


def test_a_json_array_item_that_is_not_a_row_is_named_by_its_number(write, tmp_path):
    doc = '[{"id":"a"}, 7, {"id":"b"}, {"id":"a","output":1}]'
    report = resultloader.load(write("r.json", doc), tmp_path / "r.duckdb", on_error="skip")
    assert report.bad_rows == 1
    assert table(tmp_path / "r.duckdb", "SELECT id, output FROM results ORDER BY id") == [
        ("a", "1"),
        ("b", None),
    ]
    with pytest.raises(ParseError, match="item 2 of the array"):
        resultloader.load(write("r.json", doc), tmp_path / "f.duckdb")


def maybe_inexact(data: bytes) -> list[int]:
    lines = split_lines(jsonl.JsonlChunk("t.jsonl", data, 1, 0))
    assert lines is not None
    return lines["maybe_inexact"].to_pylist()


def test_maybe_inexact_marks_the_lines_with_suspect_numbers():
    data = (
        b'{"a":1}\n'
        b'{"a":1234567890123456789012}\n'  # a long integer: marked, the SQL lets it through
        b'{"a":"1e400"}\n'
        b'{"a":1.5}\n'
        b'{"a":NaN,"b":0.12345678901234567}\n'
        b"\n"
        b'{"a":-Infinity}\n'
        b'{"a":[1,2 ,\t]}\n'  # a trailing comma
        b'{"a":"information, finance","b":"x:Inf"}\n'  # `inf` inside words, and a false alarm
        b'{"a":1e-400,"b":1e400}\n'  # only the negative exponent is rounded by DuckDB
        b'{"a":[nan]}'  # the last line, no newline
    )
    marks = maybe_inexact(data)
    # 2: always Python (not JSON, or rounded by DuckDB); 1: the SQL's regex decides
    assert marks == [0, 1, 0, 0, 2, 0, 2, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("line", "mark"),
    [
        (b'{"a":[ NAN ]}', 2),
        (b'{"a":\tinfinity}', 2),
        (b'{"a":{"b":1} , }', 2),
        (b'{"a":2E-0400}', 2),
        (b'{"a":2e-99,"b":"e-12"}', 0),  # two-digit exponents: DuckDB reads them exactly
        (b'{"a":"1234567890.12345"}', 1),  # in a string: a false alarm the SQL settles
        (b'{"a":12345678901234}', 0),
    ],
)
def test_maybe_inexact_reads_blanks_case_and_exponents(line, mark):
    assert maybe_inexact(line + b"\n") == [mark]


def test_maybe_inexact_reads_information_and_finance_as_words():
    data = b'{"a":"information","b":"finance","c":["infinite nanny"]}\n{"d":"x, information"}'
    assert maybe_inexact(data) == [0, 2]  # after ", ": could be a value


@pytest.mark.parametrize("on_error", ["fail", "skip", "quarantine"])
def test_max_line_bytes_holds_on_the_native_path_too(tmp_path, on_error):
    long_row = '{"id":"long","output":"' + "x" * 200 + '"}'
    src = tmp_path / "r.jsonl"
    src.write_text('{"id":"a","output":1}\n' + long_row + '\n{"id":"b","output":2}\n')
    db = tmp_path / "r.duckdb"
    options = resultloader.LoadOptions(max_line_bytes=100, on_error=on_error)
    if on_error == "fail":
        with pytest.raises(resultloader.ParseError) as caught:
            resultloader.load(src, resultloader.DuckDBSink(db), options=options)
        assert caught.value.line == 2 and "max_line_bytes" in str(caught.value)
        return
    report = resultloader.load(src, resultloader.DuckDBSink(db), options=options)
    con = duckdb.connect(str(db))
    assert sorted(r[0] for r in con.execute("SELECT id FROM results").fetchall()) == ["a", "b"]
    kept = on_error == "quarantine"  # without quarantine there is no rejects table
    rejects = con.execute("SELECT line, raw FROM results_rejects").fetchall() if kept else []
    con.close()
    assert report.bad_rows == 1
    assert rejects == ([(2, long_row)] if kept else [])


def test_null_output_and_missing_metadata_counts_match_the_python_path(write, tmp_path):
    """DuckDB counts them once at commit, over native and Python-parsed rows alike."""
    lines = [
        '{"id":"a","output":null,"metadata":{"m":1}}',  # native
        '{"id":"b","output":{"d":0.1000000000000000055511151231257827}}',  # Python: exact decimal
        '{"id":"c","output":null,"x":NaN}',  # bad: NaN is not JSON (quarantined, not counted)
        '{"id":"a","output":null}',  # a duplicate still counts as read
        '{"id":"d","output":1,"metadata":null}',
        "",
    ]
    path = write("r.jsonl", "\n".join(lines) + "\n")
    memory = resultloader.load(path, MemorySink(), on_error="quarantine")
    native = resultloader.load(path, tmp_path / "r.duckdb", on_error="quarantine")
    assert (native.null_outputs, native.missing_metadata, native.bad_rows) == (2, 3, 1)
    assert (memory.null_outputs, memory.missing_metadata) == (2, 3)


def _compression(db, column):
    sql = "SELECT DISTINCT compression FROM pragma_storage_info('results')"
    sql += f" WHERE column_name = '{column}'"
    return {c for (c,) in query(db, sql)}


def test_a_new_table_stores_its_text_with_zstd(write, tmp_path):
    text = "".join(f'{{"id":"r{i}","output":{{"n":{i}}},"url":"u{i}"}}\n' for i in range(3000))
    resultloader.load(write("z.jsonl", text), tmp_path / "z.duckdb")
    assert "ZSTD" in _compression(tmp_path / "z.duckdb", "output")
    assert "ZSTD" in _compression(tmp_path / "z.duckdb", "url")
    assert "ZSTD" not in _compression(tmp_path / "z.duckdb", "id")


def test_a_database_file_of_an_older_storage_version_gets_a_plain_table(write, tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{db}' AS old (STORAGE_VERSION 'v0.10.2')")  # refuses zstd
    con.close()
    text = "".join(f'{{"id":"r{i}","output":{{"n":{i}}}}}\n' for i in range(3000))
    report = resultloader.load(write("o.jsonl", text), db)
    assert report.rows_upserted == 3000
    assert table(db, "SELECT * FROM results WHERE id = 'r1004'")[0][:4] == (
        "r1004",
        '{"n":1004}',
        "{}",
        None,
    )
    assert "ZSTD" not in _compression(db, "output")

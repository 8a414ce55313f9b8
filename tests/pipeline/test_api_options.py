"""The Python API: one way in for each option, and clear errors for the usual slips."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import resultloader
from resultloader import DuckDBSink, Job, LoadOptions
from resultloader._errors import BAD_ROWS, HINTS
from resultloader.cli import main
from resultloader.cli._common import in_cli_words
from resultloader.testing import MemorySink
from tests.support.duckdb_files import query
from tests.support.rows import SEED_ROWS


def test_a_file_opened_in_text_mode_is_refused_with_the_fix(write):
    path = write("r.jsonl", SEED_ROWS)
    with path.open() as text, pytest.raises(TypeError, match=r"binary mode.*open\(path, 'rb'\)"):
        resultloader.load(text, MemorySink())


def test_shorthands_and_options_together_are_refused(write):
    path = write("r.jsonl", SEED_ROWS)
    with pytest.raises(TypeError, match=r"key= and options=LoadOptions"):
        resultloader.load(path, MemorySink(), key="custom_id", options=LoadOptions(on_error="skip"))
    with pytest.raises(TypeError, match=r"on_error=.*both given"):
        resultloader.load(path, MemorySink(), LoadOptions(), on_error="skip")


def test_options_may_be_passed_by_position_and_shorthands_alone_still_work(write, tmp_path):
    path = write("r.jsonl", '{"custom_id":"x"}\n')
    sink = MemorySink()
    resultloader.load(path, sink, LoadOptions(key="custom_id"))
    assert set(sink.rows) == {"x"}
    sink = MemorySink()
    resultloader.load(path, sink, key="custom_id")
    assert set(sink.rows) == {"x"}


def test_table_with_a_sink_object_is_refused_not_ignored(write, tmp_path):
    path = write("r.jsonl", SEED_ROWS)
    refused = r"table='t2' applies to a DuckDB file or connection given as the sink"
    with pytest.raises(TypeError, match=refused):
        resultloader.load(path, DuckDBSink(tmp_path / "x.duckdb"), table="t2")
    resultloader.load(path, tmp_path / "y.duckdb", table="t2")
    assert query(tmp_path / "y.duckdb", "SELECT count(*) FROM t2") == [(2,)]


def payload() -> dict[str, object]:
    rows = [json.loads(line) for line in SEED_ROWS.splitlines()]
    return {"namespace": "products", "request_id": "req_9", "status": "succeeded", "data": rows}


def test_ingest_takes_the_job_from_a_payload_that_names_it(monkeypatch):
    monkeypatch.delenv("SAFETYKIT_API_KEY", raising=False)
    sink = MemorySink()
    report = resultloader.ingest("safetykit", sink=sink, payload=payload())
    assert (report.job_id, len(sink.rows)) == ("req_9", 2)
    assert report.source == "safetykit:products/req_9"
    report = resultloader.ingest(
        "safetykit", Job("req_9", "products"), MemorySink(), payload=payload()
    )
    assert report.job_id == "req_9"


def test_ingest_takes_grouped_options_and_no_function_takes_more_than_ten():
    """The API access is one object beside the options objects: no public function has a long
    tail of keyword shorthands that could silently disagree with its group."""
    import inspect

    for name in resultloader.__all__:
        thing = getattr(resultloader, name)
        if inspect.isfunction(thing):
            assert len(inspect.signature(thing).parameters) <= 10, name
    assert "key=" not in repr(resultloader.ApiAccess(key="sk-secret")).replace("key=<given>", "")
    assert "sk-secret" not in repr(resultloader.ApiAccess(key="sk-secret", base_url="https://x"))


def test_a_job_given_as_text_may_name_its_namespace():
    sink = MemorySink()
    report = resultloader.ingest("safetykit", "products/req_9", sink, payload=payload())
    assert (report.job_id, report.source) == ("req_9", "safetykit:products/req_9")


def test_index_ids_true_means_the_jobs_own_id_and_load_refuses_it(write):
    with pytest.raises(ValueError, match="job's id"):
        resultloader.load(
            write("r.jsonl", '{"page":1}\n'), MemorySink(), LoadOptions(index_ids=True)
        )


@pytest.mark.parametrize("name", ["r.jsonl", "r.json", "d.json"])
def test_index_ids_are_the_same_on_every_route_and_sink(write, tmp_path, name):
    items = ['{"page":1,"output":1}', '{"id":"own"}', '{"page":3}']
    text = "\n".join(items) + "\n"
    if name == "r.json":
        text = "[" + ",".join(items) + "]"
    elif name == "d.json":
        text = '{"pages":[' + ",".join(items) + "]}"
    options = LoadOptions(index_ids="job7", items_path="pages" if name == "d.json" else None)
    sink = MemorySink()
    resultloader.load(write(name, text), sink, options)
    assert sorted(sink.rows) == ["job7/0", "job7/2", "own"]
    resultloader.load(write(name, text), tmp_path / "x.duckdb", options)
    got = query(tmp_path / "x.duckdb", "SELECT id FROM results ORDER BY id")
    assert got == [("job7/0",), ("job7/2",), ("own",)]


def test_sizes_take_the_clis_syntax_in_python(write):
    path = write("r.jsonl", '{"id":"a","output":"' + "x" * 3000 + '"}\n{"id":"b"}\n')
    options = LoadOptions(max_line_bytes="1KiB", max_bytes="1MB", memory="256MiB", on_error="skip")
    assert (options.max_line_bytes, options.max_bytes) == (1024, 2**20)  # read back as ints
    assert resultloader.load(path, MemorySink(), options).bad_rows == 1
    with pytest.raises(resultloader.DownloadError, match="more than 1,024 bytes"):
        resultloader.load(path, MemorySink(), LoadOptions(max_bytes="1KB"))
    with pytest.raises(ValueError, match="max_bytes: not a size: 'lots'"):
        LoadOptions(max_bytes="lots")
    with pytest.raises(ValueError, match="max_line_bytes must be positive"):
        LoadOptions(max_line_bytes=0)


def test_a_parse_error_in_python_names_options_the_python_way(write, tmp_path):
    path = write("r.jsonl", '{"id":"a"}\nnot json\n')
    with pytest.raises(resultloader.ParseError) as info:
        resultloader.load(path, MemorySink())
    error = info.value
    assert (error.source, error.line, error.offset) == (str(path), 2, 11)
    assert error.reason.startswith("invalid JSON")
    assert error.hint is BAD_ROWS and str(error).endswith(BAD_ROWS.python)
    assert 'on_error="skip"' in str(error) and "--on-error" not in str(error)
    with pytest.raises(resultloader.ParseError, match='pass key="COLUMN"') as info:
        resultloader.load(write("r.csv", "custom_id\nx\n"), MemorySink())
    assert "--key" not in str(info.value)


def test_the_cli_says_each_hint_in_its_own_words(write, tmp_path, monkeypatch):
    for hint in HINTS:
        assert "--" in hint.cli and "--" not in hint.python
        assert (
            in_cli_words(f"r.jsonl: line 2: why. {hint.python}")
            == f"r.jsonl: line 2: why. {hint.cli}"
        )
    monkeypatch.chdir(tmp_path)
    write("r.jsonl", '{"id":"a"}\nnot json\n')
    write("ok.jsonl", '{"id":"b"}\n')
    one = CliRunner().invoke(main, ["load", "r.jsonl"])
    assert one.exit_code == 1 and BAD_ROWS.cli in one.output and "on_error=" not in one.output
    many = CliRunner().invoke(main, ["load", "ok.jsonl", "r.jsonl", "--json"])
    failed = [json.loads(line) for line in many.stdout.splitlines() if '"failed"' in line]
    assert many.exit_code == 1 and len(failed) == 1 and BAD_ROWS.cli in failed[0]["error"]
    assert "on_error=" not in many.output


def test_a_key_is_a_field_or_a_dotted_path_of_fields(write):
    assert LoadOptions(key="response.request_id").key == "response.request_id"
    for bad in ("response..id", ".id", "id.", "a.b c", "a.1b"):
        with pytest.raises(ValueError, match="invalid key name"):
            LoadOptions(key=bad)
    path = write("r.jsonl", '{"meta":{"page":3},"output":1}\n{"output":2}\n')
    sink = MemorySink()
    resultloader.load(path, sink, LoadOptions(key="meta.page", index_ids="job7"))
    assert set(sink.rows) == {"3", "job7/1"}  # a row without the path: its index, as without a key
    with pytest.raises(resultloader.ParseError, match=r"line 2 .*no 'meta.page' field"):
        resultloader.load(path, MemorySink(), key="meta.page")

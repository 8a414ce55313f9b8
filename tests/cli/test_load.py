"""`resultloader load`, as a user runs it: exit codes, messages, --json, --quiet, the bar."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.support.cli import GOOD, run, run_on_a_terminal
from tests.support.duckdb_files import query

REPO = Path(__file__).resolve().parents[2]
REPORT_FIELDS = {
    "source",
    "rows_read",
    "rows_upserted",
    "rows_unchanged",
    "null_outputs",
    "missing_metadata",
    "duplicates",
    "bad_rows",
    "bytes_read",
    "seconds",
}
BAD = '{"id":"a","output":1}\n{"id":"b"}\nthis is not json\n{"no_id":true}\n[1,2]\n{"id":"c"}\n'


def tables(db: Path) -> set[str]:
    return {r[0] for r in query(db, "SELECT table_name FROM information_schema.tables")}


def test_success_prints_a_one_line_summary_on_stderr_and_nothing_on_stdout(write, tmp_path):
    write("r.jsonl", GOOD)
    done = run("load", "r.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert "3 rows read" in lines[0] and "2 upserted" in lines[0]
    assert "1 duplicate collapsed" in lines[0]
    assert query(tmp_path / "results.duckdb", "SELECT id, output FROM results ORDER BY id") == [
        ("a", "2"),
        ("b", None),
    ]


def test_json_prints_the_report_as_one_object(write, tmp_path):
    write("r.jsonl", GOOD)
    done = run("load", "r.jsonl", "--into", "x.duckdb", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.strip().splitlines()) == 1
    report = json.loads(done.stdout)
    assert set(report) >= REPORT_FIELDS
    assert report["source"] == str(tmp_path / "r.jsonl")  # one file, one name
    assert (report["rows_read"], report["rows_upserted"], report["duplicates"]) == (3, 2, 1)
    assert (report["null_outputs"], report["missing_metadata"], report["bad_rows"]) == (1, 2, 0)
    assert report["bytes_read"] == len(GOOD.encode())
    assert report["seconds"] > 0


def test_quiet_prints_nothing_and_still_loads(write, tmp_path):
    write("r.jsonl", GOOD)
    done = run("load", "r.jsonl", "--quiet", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert query(tmp_path / "results.duckdb", "SELECT count(*) FROM results") == [(2,)]


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_a_bad_row_fails_with_file_line_and_reason_and_commits_nothing(write, tmp_path):
    write("r.jsonl", BAD)
    done = run("load", "r.jsonl", cwd=tmp_path)
    assert_one_line_error(done, "r.jsonl", "line 3", "invalid JSON", "--on-error")
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT count(*) FROM results") == [(0,)]
    assert query(db, "SELECT status FROM _resultloader_loads") == [("failed",)]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("missing.jsonl",), ("missing.jsonl", "no such file")),
        (("r.jsonl", "--table", "results; drop table x"), ("invalid table name",)),
        (("r.jsonl", "--table", "1st"), ("invalid table name",)),
        (("r.jsonl", "--table", "order"), ("invalid table name 'order'", "reserves")),
        (("r.jsonl", "--table", "Join"), ("invalid table name 'Join'",)),
        (("r.jsonl", "--table", "_resultloader_loads"), ("invalid table name",)),
        (("r.jsonl", "--key", "my key"), ("invalid key name",)),
        (("r.jsonl", "--into", "no/such/dir/r.duckdb"), ("cannot open the database",)),
        (("corrupt.jsonl.gz",), ("corrupt.jsonl.gz",)),
        (("truncated.jsonl.gz",), ("truncated",)),
        (("doc.json",), ("invalid JSON document",)),
        (("nokey.csv",), ("no 'id' column", "'name'")),
        (("r.jsonl", "--format", "json"), ("invalid JSON document",)),
        (("ok.json", "--items-path", "nope"), ("no array at items path 'nope'",)),
        (("http://127.0.0.1:9/r.jsonl?sig=s3cr3t", "-q"), ("127.0.0.1:9",)),  # -q: no retry lines
    ],
)
def test_failures_are_one_line_errors_without_a_traceback(write, tmp_path, args, needles):
    write("r.jsonl", GOOD)
    body = gzip.compress(GOOD.encode() * 50)
    write("corrupt.jsonl.gz", body[:20] + b"\x00" * 40 + body[60:])
    write("truncated.jsonl.gz", body[: len(body) // 2])
    write("doc.json", '{"data": [{"id": "a"},')
    write("nokey.csv", "name,output\na,1\n")
    write("ok.json", '{"data": [{"id": "a"}]}')
    done = run("load", *args, cwd=tmp_path)
    assert_one_line_error(done, *needles)
    assert "s3cr3t" not in done.stderr


def test_a_corrupt_file_commits_nothing(write, tmp_path):
    write("r.jsonl", GOOD)
    assert run("load", "r.jsonl", "-q", cwd=tmp_path).returncode == 0
    body = gzip.compress(b'{"id":"z"}\n' * 10_000)
    write("t.jsonl.gz", body[: len(body) // 2])
    assert run("load", "t.jsonl.gz", cwd=tmp_path).returncode != 0
    ids = query(tmp_path / "results.duckdb", "SELECT id FROM results ORDER BY id")
    assert ids == [("a",), ("b",)]


def test_usage_errors_exit_2(tmp_path):
    done = run("load", "x.jsonl", "--format", "xml", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert run("load", cwd=tmp_path).returncode == 2


def test_on_error_skip_counts_bad_rows(write, tmp_path):
    write("r.jsonl", BAD)
    done = run("load", "r.jsonl", "--on-error", "skip", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows_read"], report["bad_rows"]) == (3, 3)
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT id FROM results ORDER BY id") == [("a",), ("b",), ("c",)]
    assert "results_rejects" not in tables(db)  # only quarantine keeps rejects


def test_on_error_quarantine_keeps_raw_line_number_and_reason(write, tmp_path):
    write("r.jsonl", BAD)
    done = run(
        "load", "r.jsonl", "--on-error", "quarantine", "--table", "decisions", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bad_rows"] == 3
    db = tmp_path / "results.duckdb"
    assert {"decisions", "decisions_rejects"} <= tables(db)
    rejects = query(
        db, "SELECT line, byte_offset, raw, reason, _source FROM decisions_rejects ORDER BY line"
    )
    assert [r[:3] for r in rejects] == [
        (3, BAD.index("this is"), "this is not json"),
        (4, BAD.index('{"no_id"'), '{"no_id":true}'),
        (5, BAD.index("[1,2]"), "[1,2]"),
    ]
    assert rejects[0][3].startswith("invalid JSON")
    assert rejects[1][3] == "no 'id' field"
    assert "array" in rejects[2][3]
    assert {r[4] for r in rejects} == {str(tmp_path / "r.jsonl")}
    # loading the same file again adds no rows, and no rejects: they are kept already
    again = run("load", "r.jsonl", "--on-error", "quarantine", "--table", "decisions", "-q",
                cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0
    assert query(db, "SELECT count(*) FROM decisions") == [(3,)]
    assert query(db, "SELECT count(*) FROM decisions_rejects") == [(3,)]


def test_quarantine_of_csv_and_json_documents(write, tmp_path):
    write("b.csv", 'id,output\na,1\nb,2,3\n,4\nc,"x\ny"\n')
    write("d.json", '[{"id":"d"}, 5, {"nokey":1}]')
    for name in ("b.csv", "d.json"):
        done = run("load", name, "--on-error", "quarantine", "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    rows = query(
        tmp_path / "results.duckdb",
        "SELECT parse_filename(_source), line, raw, reason FROM results_rejects"
        " ORDER BY _source, line",
    )
    assert rows == [
        ("b.csv", 3, "b,2,3", "expected 2 fields, found 3"),
        ("b.csv", 4, ",4", "empty 'id'"),
        ("d.json", 2, "5", "not a JSON object (a number)"),
        ("d.json", 3, '{"nokey":1}', "no 'id' field"),
    ]


def test_format_key_and_items_path_options(write, tmp_path):
    write("r.txt", "custom_id,id,output\nreq-1,7,hello\n")
    write("doc.json", '{"job":{"rows":[{"custom_id":"req-2","output":[1]}]}}')
    args = ("--key", "custom_id", "-q")
    assert run("load", "r.txt", "--format", "csv", *args, cwd=tmp_path).returncode == 0
    assert run("load", "doc.json", "--items-path", "job.rows", *args, cwd=tmp_path).returncode == 0
    got = query(tmp_path / "results.duckdb", "SELECT id, output, extra FROM results ORDER BY id")
    assert got == [("req-1", '"hello"', '{"id":"7"}'), ("req-2", "[1]", None)]


def test_no_progress_bar_escape_codes_when_stderr_is_not_a_terminal(write, tmp_path):
    write("r.jsonl", GOOD * 2000)
    done = run("load", "r.jsonl", cwd=tmp_path)
    assert done.returncode == 0
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_the_progress_bar_is_drawn_on_a_terminal_but_not_with_quiet_or_json(write, tmp_path):
    write("r.jsonl", GOOD * 20_000)
    code, out, err = run_on_a_terminal("load", "r.jsonl", cwd=tmp_path)
    assert code == 0 and out == ""
    assert "rows read" in err  # the summary
    assert "\x1b" in err  # the bar: cursor movement and colours
    code, out, err = run_on_a_terminal("load", "r.jsonl", "--quiet", cwd=tmp_path)
    assert (code, out, err) == (0, "", "")
    code, out, err = run_on_a_terminal("load", "r.jsonl", "--json", cwd=tmp_path)
    assert code == 0 and err == ""
    assert json.loads(out)["rows_read"] == 60_000


def test_help_documents_every_option(tmp_path):
    done = run("load", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for option in (
        "--into",
        "--table",
        "--format [auto|jsonl|json|csv|tsv]",
        "--delimiter",
        "--key",
        "--items-path",
        "--on-error [fail|skip|quarantine]",
        "--max-line-bytes",
        "--json",
        "--quiet",
    ):
        assert option in text
    for words in ("DuckDB database file", "identifies a row", "dotted path", "<table>_rejects",
                  "one JSON object", "No progress bar", "- for stdin"):  # fmt: skip
        assert words in text
    top = run("--help", cwd=tmp_path)
    assert top.returncode == 0 and "load" in top.stdout


def test_version(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert done.returncode == 0 and "0.1.0" in done.stdout


def test_the_readme_command_on_the_sample_file(tmp_path):
    """README: `resultloader load examples/sample_results.jsonl --into results.duckdb`."""
    readme = (REPO / "README.md").read_text()
    assert "resultloader load examples/sample_results.jsonl --into results.duckdb" in readme
    db = tmp_path / "results.duckdb"
    done = run("load", "examples/sample_results.jsonl", "--into", str(db), cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = {r[0]: r[1:] for r in query(db, "SELECT id, output, metadata, url, extra FROM results")}
    assert set(rows) == {"product_12345", "product_67890", "product_24680", "product_13579"}
    assert json.loads(rows["product_12345"][1]) == {"source": "backfill", "attempt": 2}  # last
    assert rows["product_24680"][0] is None  # output null
    assert rows["product_24680"][1] == "{}"  # metadata missing
    assert "123456789012345678901234567890" in rows["product_13579"][0]
    assert "0.1000000000000000055511151231257827" in rows["product_13579"][0]
    assert "Café crème ☕" in rows["product_12345"][0]


def test_quiet_still_reports_an_error(write, tmp_path):
    write("r.jsonl", BAD)
    done = run("load", "r.jsonl", "--quiet", cwd=tmp_path)
    assert_one_line_error(done, "line 3")


def test_json_failure_prints_the_error_as_json_and_one_line_on_stderr(write, tmp_path):
    write("r.jsonl", BAD)
    done = run("load", "r.jsonl", "--json", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert json.loads(done.stdout)["error"]["line"] == 3


def test_a_database_in_use_by_another_process_is_a_one_line_error(write, tmp_path):
    write("r.jsonl", GOOD)
    holder = duckdb.connect(str(tmp_path / "busy.duckdb"))  # holds the file's write lock
    try:
        done = run("load", "r.jsonl", "--into", "busy.duckdb", cwd=tmp_path)
    finally:
        holder.close()
    assert_one_line_error(done, "busy.duckdb", "in use")


LONG_LINE = '{"id":"a","output":"' + "x" * 3000 + '"}\n{"id":"b"}\n'


def test_every_size_option_takes_one_size_syntax(write, tmp_path):
    write("r.jsonl", LONG_LINE)
    skipped = run("load", "r.jsonl", "--max-line-bytes", "1KiB", "--on-error", "skip", "--json",
                  cwd=tmp_path)  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["bad_rows"] == 1  # the 3,000-byte line: over 1 KiB
    bomb = run("load", "r.jsonl", "--max-bytes", "1KB", cwd=tmp_path)  # KB: binary, as --memory
    assert bomb.returncode == 1 and "more than 1,024 bytes" in bomb.stderr
    sized = ("--max-bytes", "1MB", "--max-line-bytes", "4k", "--memory", "0.5GiB")
    assert run("load", "r.jsonl", *sized, cwd=tmp_path).returncode == 0
    for option in ("--max-bytes", "--max-line-bytes", "--memory"):
        refused = run("load", "r.jsonl", option, "lots", cwd=tmp_path)
        assert refused.returncode == 2 and "not a size: 'lots'" in refused.stderr


def test_help_shows_sizes_in_units(tmp_path):
    from click.testing import CliRunner

    from resultloader.cli import main

    for command in (["load"], ["ingest", "safetykit"], ["ingest", "openai-batch"]):
        done = CliRunner().invoke(main, [*command, "--help"])
        text = " ".join(done.output.split())
        assert done.exit_code == 0 and "268435456" not in text
        assert "256MiB]" in text and "[default: 512MiB]" in text  # --max-line-bytes, --memory
        assert text.count("SIZE") >= 3  # --max-line-bytes, --max-bytes, --memory


def test_key_takes_a_dotted_path(write, tmp_path):
    write("r.jsonl", '{"response":{"request_id":"r1"},"output":1}\n{"response":{}}\n')
    done = run("load", "r.jsonl", "--key", "response.request_id", "--on-error", "quarantine",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT id, output, extra FROM results") == [
        ("r1", "1", '{"response":{"request_id":"r1"}}')
    ]
    assert query(db, "SELECT line, reason FROM results_rejects") == [
        (2, "no 'response.request_id' field")
    ]
    help_text = " ".join(run("load", "--help", cwd=tmp_path).stdout.split())
    assert "dotted path" in help_text and "response.request_id" in help_text

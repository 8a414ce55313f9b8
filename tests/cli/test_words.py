"""What the CLI says: words, units and numbers a reader can trust."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import socket
import subprocess
import time

from tests.support.cli import GOOD, SCRIPT, run, run_on_a_terminal
from tests.support.duckdb_files import query


def test_one_row_is_a_row_and_a_blink_has_no_rate(write, tmp_path):
    write("one.jsonl", '{"id":"a","output":1,"metadata":{}}\n')
    done = run("load", "one.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 row read," in done.stderr and "1 rows" not in done.stderr
    assert "0 null outputs" in done.stderr
    assert "rows/s" not in done.stderr  # a rate over a few milliseconds means nothing


def test_a_gzipped_load_reports_the_data_size_and_the_compressed_one(tmp_path):
    rows = "".join(f'{{"id":"{i}","output":"{"x" * 200}"}}\n' for i in range(5000))
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    done = run("load", "r.jsonl.gz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    mib = len(rows) / 2**20
    assert f"; {mib:.1f} MiB (" in done.stderr and " gzip)" in done.stderr


def test_a_csv_without_output_or_metadata_columns_does_not_count_them(write, tmp_path):
    write("d.csv", "id,label\na,x\nb,y\n")
    done = run("load", "d.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 rows read" in done.stderr
    assert "null output" not in done.stderr and "without metadata" not in done.stderr
    write("o.csv", "id,output\na,1\nb,\n")
    done = run("load", "o.csv", cwd=tmp_path)
    assert "1 null output;" in done.stderr  # with the column, its empty cells are news


def test_one_file_has_one_source_name_however_its_path_is_typed(write, tmp_path):
    write("r.jsonl", GOOD)
    (tmp_path / "sub").mkdir()
    for path in ("r.jsonl", "./r.jsonl", "sub/../r.jsonl", str(tmp_path / "r.jsonl")):
        assert run("load", path, "-q", cwd=tmp_path).returncode == 0
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT DISTINCT _source FROM results") == [(str(tmp_path / "r.jsonl"),)]
    assert query(db, "SELECT DISTINCT source FROM _resultloader_loads") == [
        (str(tmp_path / "r.jsonl"),)
    ]


def test_the_bar_counts_in_the_summarys_units(write, tmp_path):
    write("r.jsonl", GOOD * 20_000)
    code, _, err = run_on_a_terminal("load", "r.jsonl", cwd=tmp_path)
    assert code == 0
    bar = err[: err.rindex("rows read")]
    assert "MiB" in bar and not re.search(r"\d MB\b|MB/s", bar)


def test_stdin_from_a_terminal_says_it_is_waiting(tmp_path):
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [SCRIPT, "load", "-"], cwd=tmp_path, stdin=secondary,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        os.close(secondary)
        os.write(main, b'{"id":"a"}\n')
        for _ in range(5):  # Ctrl-D on an empty line: end of input (each read sees one)
            os.write(main, b"\x04")
            time.sleep(0.2)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
    assert proc.returncode == 0, err
    assert err.splitlines()[0].startswith("reading rows from standard input")
    assert "1 row read" in err


def test_json_on_failure_prints_the_error_and_the_counts_so_far(write, tmp_path):
    write("bad.jsonl", '{"id":"a"}\n' * 3 + "not json\n")
    done = run("load", "bad.jsonl", "--json", cwd=tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)  # one object, nothing else on stdout
    assert report["error"]["kind"] == "ParseError"
    assert report["error"]["line"] == 4
    assert report["error"]["file"] == str(tmp_path / "bad.jsonl")
    assert "invalid JSON" in report["error"]["message"]
    assert report["bytes_read"] == 3 * 11 + 9 and report["rows_upserted"] is None
    missing = run("load", "nope.jsonl", "--json", cwd=tmp_path)
    assert missing.returncode == 1
    failed = json.loads(missing.stdout)
    assert failed["error"]["kind"] == "DownloadError"
    assert "no such file" in failed["error"]["message"]
    assert (failed["rows_read"], failed["error"]["line"]) == (0, None)


def test_an_unknown_scheme_is_named_with_the_supported_ones(tmp_path):
    done = run("load", "htp://host/x.jsonl?sig=SECRET", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: htp://host/x.jsonl: unknown URL scheme 'htp'")
    assert "https://" in done.stderr and "s3://" in done.stderr
    assert "no such file" not in done.stderr and "SECRET" not in done.stderr


def test_a_refused_connection_is_retried_visibly_then_fails_in_one_line(tmp_path):
    # a port bound and never listened on, held throughout: connections to it are refused,
    # and no other process (a test suite beside this one) can take it in the meantime
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    done = run("load", f"http://127.0.0.1:{port}/x.jsonl", cwd=tmp_path)
    assert done.returncode == 1
    *retries, error = done.stderr.splitlines()
    # between the parentheses and after "cannot connect: ", the OS's words (its strerror)
    assert [re.sub(r"\(.+\)", "(…)", line) for line in retries] == [
        "cannot connect to 127.0.0.1 (…); retry 1 of 2",
        "cannot connect to 127.0.0.1 (…); retry 2 of 2 in 1.0s",
    ]
    assert error.startswith(
        f"error: http://127.0.0.1:{port}/x.jsonl: cannot open: cannot connect: "
    )
    quiet = run("load", f"http://127.0.0.1:{port}/x.jsonl", "-q", cwd=tmp_path)
    probe.close()
    assert quiet.stderr.count("\n") == 1 and "HTTPConnectionPool" not in quiet.stderr

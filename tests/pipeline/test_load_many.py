"""Many sources at once: globs, order, skips of unchanged sources, --workers, --atomic, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import resultloader
from resultloader import LoadOptions, load_many
from tests.support.duckdb_files import query
from tests.support.row_files import bad_rows_files, jsonl


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Three files under tmp_path/data, sharing the id "x"; sorted: a, b/c, d."""
    paths = {
        "a": tmp_path / "data" / "a.jsonl",
        "c": tmp_path / "data" / "b" / "c.jsonl",
        "d": tmp_path / "data" / "d.jsonl",
    }
    paths["c"].parent.mkdir(parents=True)
    paths["a"].write_text(jsonl(("x", "from a"), ("a1", 1), ("a2", 2)))
    paths["c"].write_text(jsonl(("x", "from c"), ("c1", 1)))
    paths["d"].write_text(jsonl(("d1", 1), ("x", "from d"), ("x", "d again")))
    return paths


def table(db: Path) -> dict[str, tuple[object, ...]]:
    return {r[0]: r[1:] for r in query(db, "SELECT id, output, _source FROM results")}


def outputs(db: Path) -> dict[str, object]:
    return {i: json.loads(r[0]) if r[0] else None for i, r in table(db).items()}


def ledger(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT source, status FROM _resultloader_loads ORDER BY started_at")


def test_a_glob_loads_every_file_sorted_each_its_own_load(files, tmp_path):
    db = tmp_path / "r.duckdb"
    results = load_many(str(tmp_path / "data" / "**" / "*.jsonl"), db)
    names = [str(files[k]) for k in ("a", "c", "d")]
    assert [(r.source, r.outcome) for r in results] == [(n, "loaded") for n in names]
    assert [r.report.rows_upserted for r in results if r.report] == [3, 2, 2]
    assert outputs(db)["x"] == "d again"  # the last file, and its last line
    assert table(db)["c1"][1] == str(files["c"])  # each row names its own file
    assert ledger(db) == [(n, "committed") for n in names]


def test_the_order_given_decides_which_row_wins(files, tmp_path):
    db = tmp_path / "r.duckdb"
    load_many([str(files["d"]), str(files["a"])], db)
    assert outputs(db)["x"] == "from a"


def test_a_rerun_skips_what_is_committed_and_unchanged(files, tmp_path):
    db = tmp_path / "r.duckdb"
    sources = [str(files[k]) for k in ("a", "c", "d")]
    load_many(sources, db)
    again = load_many(sources, db)
    assert [r.outcome for r in again] == ["skipped"] * 3
    assert len(ledger(db)) == 3  # no load at all
    files["d"].write_text(jsonl(("x", "d changed")))
    again = load_many(sources, db)
    assert [r.outcome for r in again] == ["skipped", "skipped", "loaded"]
    assert outputs(db)["x"] == "d changed"


def test_a_changed_source_reloads_those_after_it_so_the_order_still_holds(files, tmp_path):
    db = tmp_path / "r.duckdb"
    sources = [str(files[k]) for k in ("a", "c", "d")]
    load_many(sources, db)
    files["a"].write_text(jsonl(("x", "a changed"), ("a1", 1), ("a2", 2), ("a3", 3)))
    again = load_many(sources, db)
    assert [r.outcome for r in again] == ["loaded", "loaded", "loaded"]
    assert outputs(db)["x"] == "d again"  # not a's newer row: d comes after a
    assert outputs(db)["a3"] == 3


def test_a_bad_source_stops_there_and_leaves_the_committed_ones(files, tmp_path):
    db = tmp_path / "r.duckdb"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id":"b1"}\nnot json\n')
    sources = [str(files["a"]), str(bad), str(files["d"])]
    seen: list[str] = []
    with pytest.raises(resultloader.ParseError, match=r"bad\.jsonl: line 2") as caught:
        load_many(sources, db, each=lambda r: seen.append(r.outcome))
    assert seen == ["loaded", "failed"]  # d was never loaded
    assert [r.outcome for r in caught.value.resultloader_results] == ["loaded", "failed"]
    assert set(outputs(db)) == {"x", "a1", "a2"}
    assert ledger(db) == [(str(files["a"]), "committed"), (str(bad), "failed")]
    bad.write_text('{"id":"b1"}\n')  # fixed: the re-run finishes what is left
    again = load_many(sources, db)
    assert [r.outcome for r in again] == ["skipped", "loaded", "loaded"]
    assert outputs(db)["x"] == "d again"


def test_a_source_failing_in_a_worker_thread_has_a_failed_ledger_row_as_in_one_process(
    files, tmp_path
):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id":"b1"}\nnot json\n')
    sources = [str(files["a"]), str(bad), str(files["d"])]
    found = []
    for workers in (1, 2):
        db = tmp_path / f"r{workers}.duckdb"
        with pytest.raises(resultloader.ParseError):
            load_many(sources, db, workers=workers)
        found.append(query(db, "SELECT source, status, error FROM _resultloader_loads"))
    one, staged = found
    assert staged == one
    assert one[-1][:2] == (str(bad), "failed") and "line 2" in one[-1][2]


@pytest.mark.parametrize("workers", [1, 3])
def test_atomic_commits_all_in_one_load_or_nothing(files, tmp_path, workers):
    db = tmp_path / "r.duckdb"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id":"b1"}\nnot json\n')
    sources = [str(files["a"]), str(files["c"]), str(bad), str(files["d"])]
    with pytest.raises(resultloader.ParseError, match=r"bad\.jsonl: line 2"):
        load_many(sources, db, atomic=True, workers=workers)
    assert outputs(db) == {}
    label = f"{files['a']} (+3 more, atomic)"
    failed = query(db, "SELECT source, status, error FROM _resultloader_loads")
    assert [row[:2] for row in failed] == [(label, "failed")] and "bad.jsonl" in failed[0][2]
    sources.remove(str(bad))
    results = load_many(sources, db, atomic=True, workers=workers)
    assert outputs(db)["x"] == "d again"  # last wins across the sources in one load
    assert len(outputs(db)) == 5
    assert ledger(db)[1:] == [(results[-1].source, "committed")]
    assert results[-1].report is not None and results[-1].report.rows_upserted == 5
    assert results[-1].report.rows_read == 8
    assert [r.outcome for r in load_many(sources, db, atomic=True)] == ["skipped"] * 3


@pytest.mark.parametrize("atomic", [False, True])
def test_workers_give_the_table_and_rejects_of_one_at_a_time(tmp_path, atomic):
    sources = bad_rows_files(tmp_path, 6)
    options = LoadOptions(on_error="quarantine")
    one, many = tmp_path / "one.duckdb", tmp_path / "many.duckdb"
    load_many(sources, one, options)
    load_many(sources, many, options, workers=3, atomic=atomic)
    rows = "SELECT id, output::VARCHAR, metadata::VARCHAR FROM results ORDER BY id"
    assert query(many, rows) == query(one, rows)
    assert "0.1000000000000000055511" in query(many, rows)[0][1]  # exact, not a double
    kept = "SELECT line, reason, raw FROM results_rejects ORDER BY _source, line"
    assert query(many, kept) == query(one, kept)
    assert len(query(many, kept)) == 6


def test_quarantine_into_a_sink_without_rejects_is_refused_up_front(files):
    with pytest.raises(resultloader.ResultLoaderError, match="cannot keep rejected rows"):
        load_many([str(files["a"])], lambda batch: None, LoadOptions(on_error="quarantine"))


def test_a_glob_that_matches_nothing_is_an_error(tmp_path):
    with pytest.raises(resultloader.DownloadError, match="no file matches"):
        load_many(str(tmp_path / "*.jsonl"), tmp_path / "r.duckdb")


# -- the CLI -----------------------------------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("resultloader")), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_json_lines_one_per_source_and_skips_on_a_rerun(files, tmp_path):
    done = cli("load", "data/**/*.jsonl", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["source"], d["outcome"]) for d in lines] == [
        (str(files[k]), "loaded") for k in ("a", "c", "d")
    ]
    again = cli("load", "data/**/*.jsonl", "--workers", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped: committed before, unchanged") == 3
    assert "0 loaded, 3 skipped" in again.stderr


def test_cli_a_bad_source_is_named_in_one_line(files, tmp_path):
    (tmp_path / "bad.jsonl").write_text("not json\n")
    done = cli("load", str(files["a"]), "bad.jsonl", str(files["d"]), "--json", cwd=tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "bad.jsonl: line 1" in errors[0]
    outcomes = [json.loads(line)["outcome"] for line in done.stdout.splitlines()]
    assert outcomes == ["loaded", "failed"]
    assert set(outputs(tmp_path / "results.duckdb")) == {"x", "a1", "a2"}


# -- over real transports: loopback HTTP with ETags, moto's S3 ----------------------------------


class Served:
    """Files an http.server serves with an ETag, and the methods it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.methods: list[str] = []


@pytest.fixture
def served() -> Iterator[tuple[str, Served]]:
    state = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.answer(with_body=False)

        def do_GET(self) -> None:
            self.answer(with_body=True)

        def answer(self, with_body: bool) -> None:
            state.methods.append(self.command)
            body = state.files.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            # an MD5, not a CRC32: the CRC32 of a whole gzip file is the same for any content
            self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_urls_load_in_order_and_a_rerun_skips_them_by_etag(served, tmp_path):
    base, state = served
    state.files["/1.jsonl"] = jsonl(("x", 1), ("y", 1)).encode()
    state.files["/2.jsonl.gz"] = gzip.compress(jsonl(("x", 2)).encode())
    urls = [f"{base}/1.jsonl", f"{base}/2.jsonl.gz"]
    db = tmp_path / "r.duckdb"
    assert [r.outcome for r in load_many(urls, db, workers=2)] == ["loaded", "loaded"]
    assert outputs(db) == {"x": 2, "y": 1}
    state.methods.clear()
    assert [r.outcome for r in load_many(urls, db)] == ["skipped", "skipped"]
    assert "GET" not in state.methods  # only HEADs: nothing downloaded
    state.files["/2.jsonl.gz"] = gzip.compress(jsonl(("x", 3)).encode())
    assert [r.outcome for r in load_many(urls, db)] == ["skipped", "loaded"]
    assert outputs(db)["x"] == 3


def test_a_signed_url_query_shows_nowhere(served, tmp_path):
    base, state = served
    state.files["/1.jsonl"] = jsonl(("x", 1)).encode()
    signed = [f"{base}/1.jsonl?sig=s3cr3t", f"{base}/missing.jsonl?sig=s3cr3t"]
    done = cli("load", *signed, "--json", "--into", "r.duckdb", cwd=tmp_path)
    assert done.returncode == 1
    assert "s3cr3t" not in done.stdout + done.stderr
    assert [json.loads(line)["outcome"] for line in done.stdout.splitlines()] == [
        "loaded",
        "failed",
    ]
    assert "missing.jsonl" in done.stderr
    stored = query(tmp_path / "r.duckdb", "SELECT source FROM _resultloader_loads")
    assert stored and "s3cr3t" not in str(stored)
    single = cli("load", signed[0], "--into", "r.duckdb", cwd=tmp_path)  # `?`: not a glob
    assert single.returncode == 0, single.stderr
    assert "skipped" not in single.stderr


def test_a_missing_url_stops_the_run_named(served, tmp_path):
    base, state = served
    state.files["/1.jsonl"] = jsonl(("x", 1)).encode()
    db = tmp_path / "r.duckdb"
    with pytest.raises(resultloader.DownloadError, match=r"/missing\.jsonl"):
        load_many([f"{base}/1.jsonl", f"{base}/missing.jsonl"], db, workers=2)
    assert outputs(db) == {"x": 1}


def test_an_s3_glob_loads_matching_objects_sorted_and_skips_them_again(bucket, tmp_path):
    name, client = bucket
    bodies = {
        "runs/2024/b.jsonl": jsonl(("x", "b"), ("b", 1)).encode(),
        "runs/2024/deep/c.jsonl.gz": gzip.compress(jsonl(("x", "c")).encode()),
        "runs/a.jsonl": jsonl(("x", "a"), ("a", 1)).encode(),
        "runs/2024/notes.txt": b"not a result",
        "other/z.jsonl": jsonl(("z", 1)).encode(),
    }
    for key, body in bodies.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    db = tmp_path / "r.duckdb"
    results = load_many(f"s3://{name}/runs/**/*.jsonl*", db, workers=2)
    assert [r.source for r in results] == [
        f"s3://{name}/runs/2024/b.jsonl",
        f"s3://{name}/runs/2024/deep/c.jsonl.gz",
        f"s3://{name}/runs/a.jsonl",
    ]
    assert outputs(db) == {"x": "a", "b": 1, "a": 1}
    again = load_many(f"s3://{name}/runs/**/*.jsonl*", db)
    assert [r.outcome for r in again] == ["skipped"] * 3
    client.put_object(Bucket=name, Key="runs/a.jsonl", Body=jsonl(("x", "a2")).encode())
    again = load_many(f"s3://{name}/runs/**/*.jsonl*", db)
    assert [r.outcome for r in again] == ["skipped", "skipped", "loaded"]
    assert outputs(db)["x"] == "a2"
    one_level = load_many(f"s3://{name}/runs/*.jsonl", tmp_path / "one.duckdb")
    assert [r.source for r in one_level] == [f"s3://{name}/runs/a.jsonl"]


def test_the_dask_engine_without_its_extra_names_the_extra(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: import fails
    with pytest.raises(resultloader.ResultLoaderError, match=r"resultloader\[dask\]"):
        load_many([str(files["a"])], tmp_path / "r.duckdb", engine="dask")


def test_an_unknown_engine_or_a_stage_without_dask_is_refused(files, tmp_path):
    with pytest.raises(ValueError, match="engine must be"):
        load_many([str(files["a"])], tmp_path / "r.duckdb", engine="spark")
    with pytest.raises(ValueError, match="parts_dir is for the Dask engine"):
        load_many([str(files["a"])], tmp_path / "r.duckdb", workers=2, parts_dir=str(tmp_path))


# -- a database among the sources (issue 20, point 7) -------------------------------------------


def _duckdb_file(path: Path) -> bytes:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE kept AS SELECT 1 AS x")
    con.close()
    return path.read_bytes()


def _sqlite_file(path: Path) -> bytes:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE kept (x)")
    con.commit()
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "route",
    [[], ["--workers", "2"], ["--atomic"], ["--json"]],
    ids=["one-at-a-time", "workers", "atomic", "json"],
)
def test_cli_a_duckdb_file_among_the_sources_is_the_target_mistyped(tmp_path, route):
    (tmp_path / "export.json").write_text(jsonl(("e1", 1)))
    before = _duckdb_file(tmp_path / "target.duckdb")
    done = cli("load", "export.json", "target.duckdb", *route, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == "error: target.duckdb is a database: did you mean --into target.duckdb?\n"
    assert not (tmp_path / "results.duckdb").exists()  # export.json was not loaded first
    assert (tmp_path / "target.duckdb").read_bytes() == before


def test_cli_a_database_alone_or_matched_by_a_glob_is_refused_before_loading(files, tmp_path):
    _duckdb_file(tmp_path / "data" / "zz.duckdb")
    alone = cli("load", "data/zz.duckdb", cwd=tmp_path)
    hint = "did you mean --into data/zz.duckdb?"
    assert alone.stderr == f"error: data/zz.duckdb is a database: {hint}\n"
    globbed = cli("load", "data/*", cwd=tmp_path)
    assert globbed.returncode == 1 and "data/zz.duckdb is a database" in globbed.stderr
    spaced = tmp_path / "my target.duckdb"
    _duckdb_file(spaced)
    quoted = cli("load", "data/a.jsonl", str(spaced), cwd=tmp_path)
    assert quoted.stderr.endswith("did you mean --into 'my target.duckdb'?\n")
    assert not (tmp_path / "results.duckdb").exists()


def test_a_sqlite_file_among_the_sources_is_refused_before_loading(files, tmp_path):
    before = _sqlite_file(tmp_path / "old.sqlite")
    done = cli("load", "data/a.jsonl", "old.sqlite", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "error: old.sqlite: not a text format we read (it is a SQLite database)\n"
    )
    assert not (tmp_path / "results.duckdb").exists()
    assert (tmp_path / "old.sqlite").read_bytes() == before


def test_the_library_refuses_a_database_among_the_sources_before_loading(files, tmp_path):
    target = tmp_path / "target.duckdb"
    _duckdb_file(target)
    db = tmp_path / "r.duckdb"
    for call in (
        lambda: load_many([str(files["a"]), str(target)], db),
        lambda: resultloader.load(f"file://{target}", db),
    ):
        with pytest.raises(resultloader.DownloadError) as caught:
            call()
        assert str(caught.value) == (
            f"{target} is a DuckDB database, not a result file: did you mean to load into it "
            "(as the sink)?"
        )
    assert not db.exists()
    named_duckdb = tmp_path / "rows.duckdb"  # the bytes decide, not the name
    named_duckdb.write_text(jsonl(("n1", 1)))
    assert resultloader.load(named_duckdb, db, format="jsonl").rows_read == 1

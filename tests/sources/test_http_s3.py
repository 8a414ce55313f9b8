"""Sources over real transports on loopback: an http.server, stdin, and moto's S3 server."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import zstandard

import resultloader
from resultloader.testing import MemorySink
from tests.support.s3 import S3_ENV

ROWS = b"".join(
    b'{"id":"r%d","output":{"n":%d},"metadata":{"i":%d}}\n' % (i, i, i) for i in range(500)
)
ZSTD = zstandard.ZstdCompressor().compress
CSV = b"id,output\nc1,1\nc2,2\n"
DOCUMENT = b'{"status":"succeeded","data":[{"id":"d1"},{"id":"d2"}]}'


class Files:
    """What the test server serves: path -> (body, content type)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []

    def add(self, path: str, body: bytes, ctype: str = "application/octet-stream") -> None:
        self.files[path] = (body, ctype)


def make_handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requests.append(self.path)
            path = self.path.split("?", 1)[0]
            if path not in files.files:
                self.send_error(404)
                return
            body, ctype = files.files[path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def http() -> Iterator[tuple[str, Files]]:
    files = Files()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


def memory_load(source: str, **kwargs: object) -> tuple[MemorySink, resultloader.LoadReport]:
    sink = MemorySink()
    report = resultloader.load(source, sink, **kwargs)  # type: ignore[arg-type]
    return sink, report


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/r.jsonl", ROWS),
        ("/r.jsonl.gz", gzip.compress(ROWS)),
        ("/r.jsonl.bz2", bz2.compress(ROWS)),
        ("/r.jsonl.zst", ZSTD(ROWS)),
        ("/presigned/abc123", gzip.compress(ROWS)),  # no extension: magic bytes decide
        ("/presigned/def456", ZSTD(ROWS)),
        ("/presigned/ghi789", bz2.compress(ROWS)),
        ("/r.jsonl.gz.download", gzip.compress(ROWS)),
    ],
)
def test_http_files_plain_and_compressed(http, path, body):
    base, files = http
    files.add(path, body)
    sink, report = memory_load(base + path)
    assert len(sink.rows) == 500
    assert sink.rows["r499"]["output"] == {"n": 499}
    assert sink.rows["r7"]["metadata"] == {"i": 7}
    assert report.rows_read == 500
    assert report.bytes_read == len(body)  # bytes as transferred, before decompression


def test_zstd_with_several_frames(http):
    base, files = http
    half = ROWS.index(b'{"id":"r250"')
    files.add("/multi", ZSTD(ROWS[:half]) + ZSTD(ROWS[half:]))
    sink, _ = memory_load(base + "/multi")
    assert len(sink.rows) == 500


def test_a_url_with_a_query_string_loads_and_the_query_never_shows(http, tmp_path):
    base, files = http
    files.add("/out/results.jsonl.gz", gzip.compress(ROWS))
    url = base + "/out/results.jsonl.gz?X-Amz-Signature=s3cr3t&X-Amz-Expires=300"
    db = tmp_path / "r.duckdb"
    report = resultloader.load(url, db)
    assert report.rows_read == 500
    assert files.requests[-1].endswith("X-Amz-Signature=s3cr3t&X-Amz-Expires=300")
    assert "s3cr3t" not in report.source
    assert report.source == base + "/out/results.jsonl.gz"
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT DISTINCT _source FROM results").fetchall()
        ledger = con.execute("SELECT source FROM _resultloader_loads").fetchall()
    finally:
        con.close()
    assert stored == [(report.source,)]
    assert ledger == [(report.source,)]


@pytest.mark.parametrize(
    ("ctype", "body", "ids"),
    [
        ("text/csv; charset=utf-8", CSV, ["c1", "c2"]),
        ("application/json", DOCUMENT, ["d1", "d2"]),
        ("application/x-ndjson", b'{"id":"n1"}\n{"id":"n2"}\n', ["n1", "n2"]),
    ],
)
def test_the_content_type_chooses_the_format_of_an_extensionless_url(http, ctype, body, ids):
    base, files = http
    files.add("/download", body, ctype)
    sink, _ = memory_load(base + "/download")
    assert sorted(sink.rows) == ids


def test_a_json_document_over_http_with_an_items_path(http):
    base, files = http
    files.add("/result.json.gz", gzip.compress(b'{"job":{"pages":[{"id":"p1"},{"id":"p2"}]}}'))
    sink, _ = memory_load(base + "/result.json.gz", items_path="job.pages")
    assert sorted(sink.rows) == ["p1", "p2"]


def test_a_missing_url_is_a_download_error_without_the_query(http):
    base, _ = http
    with pytest.raises(resultloader.DownloadError) as info:
        memory_load(base + "/nope.jsonl?sig=s3cr3t")
    assert "404" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def run_cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None, cwd: Path):
    return subprocess.run(
        [str(Path(sys.executable).with_name("resultloader")), *args],  # the installed script
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "body", [ROWS, gzip.compress(ROWS), ZSTD(ROWS)], ids=["plain", "gzip", "zstd"]
)
def test_stdin_through_the_cli(tmp_path, body):
    done = run_cli("load", "-", "--into", "r.duckdb", "--json", stdin=body, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["source"], report["rows_read"], report["rows_upserted"]) == ("-", 500, 500)
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM results").fetchone() == (500,)
    finally:
        con.close()


def test_stdin_csv_is_detected_by_its_first_bytes(tmp_path):
    done = run_cli("load", "-", "--into", "r.duckdb", "--json", stdin=CSV, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_read"] == 2


# -- s3:// against moto's server on loopback ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("batch/results.jsonl", ROWS),
        ("batch/results.jsonl.gz", gzip.compress(ROWS)),
        ("batch/results.jsonl.zst", ZSTD(ROWS)),
        ("batch/0f3c9a", gzip.compress(ROWS)),
    ],
)
def test_s3_objects(bucket, key, body):
    name, client = bucket
    client.put_object(Bucket=name, Key=key, Body=body)  # type: ignore[attr-defined]
    sink, report = memory_load(f"s3://{name}/{key}")
    assert len(sink.rows) == 500
    assert sink.rows["r123"]["output"] == {"n": 123}
    assert report.source == f"s3://{name}/{key}"
    assert report.bytes_read == len(body)


def test_s3_csv(bucket):
    name, client = bucket
    client.put_object(Bucket=name, Key="batch.csv", Body=CSV)  # type: ignore[attr-defined]
    sink, _ = memory_load(f"s3://{name}/batch.csv")
    assert sorted(sink.rows) == ["c1", "c2"]


def test_a_missing_s3_object_or_bucket_is_a_download_error_in_our_words(bucket):
    name, _ = bucket
    with pytest.raises(resultloader.DownloadError) as info:
        memory_load(f"s3://{name}/missing.jsonl")
    assert str(info.value) == f"s3://{name}/missing.jsonl: no such object"
    assert info.value.status == 404
    with pytest.raises(resultloader.DownloadError) as info:
        memory_load(f"s3://{name}-gone/r.jsonl")
    assert str(info.value) == f"s3://{name}-gone/r.jsonl: no such bucket"


@pytest.mark.parametrize(
    ("wrapper", "code", "words", "status"),
    [
        (OSError, "NoSuchKey", "no such object", 404),  # smart_open 7
        (FileNotFoundError, "NoSuchKey", "no such object", 404),  # smart_open 9
        (OSError, "AccessDenied", "access denied: check the credentials", 403),
        (PermissionError, "AccessDenied", "access denied: check the credentials", 403),
    ],
)
def test_an_object_stores_refusal_has_our_words_whichever_error_smart_open_wraps_it_in(
    monkeypatch, wrapper, code, words, status
):
    """smart_open 7 raises S3's NoSuchKey as an OSError, 9 as a FileNotFoundError (and
    AccessDenied as a PermissionError); both keep botocore's error as the cause and as
    `backend_error`."""
    import smart_open
    from botocore.exceptions import ClientError

    def refuse(*args: object, **kwargs: object) -> None:
        answer = {"Error": {"Code": code, "Message": "The store's own words."}}
        error = ClientError(answer, "GetObject")  # type: ignore[arg-type]
        wrapped = wrapper(f"unable to access bucket: 'b' key: 'k' error: {error}")
        wrapped.backend_error = error  # type: ignore[attr-defined]
        raise wrapped from error

    monkeypatch.setattr(smart_open, "open", refuse)
    with pytest.raises(resultloader.DownloadError) as info:
        memory_load("s3://b/k.jsonl")
    assert str(info.value).startswith(f"s3://b/k.jsonl: {words}")
    assert info.value.status == status


def test_s3_through_the_cli(bucket, s3_server, tmp_path):
    name, client = bucket
    client.put_object(Bucket=name, Key="r.jsonl.gz", Body=gzip.compress(ROWS))  # type: ignore[attr-defined]
    env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server}
    done = run_cli("load", f"s3://{name}/r.jsonl.gz", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_upserted"] == 500
    assert (tmp_path / "results.duckdb").exists()


# -- local sources ---------------------------------------------------------------------------------


def test_local_sources_as_path_str_file_url_and_binary_file(write):
    body = gzip.compress(ROWS)
    path = write("local.jsonl.gz", body)
    for source in (path, str(path), path.as_uri()):
        sink, report = memory_load(source)  # type: ignore[arg-type]
        assert len(sink.rows) == 500
        assert report.bytes_read == len(body)
    with path.open("rb") as f:
        sink, report = memory_load(f)  # type: ignore[arg-type]
    assert len(sink.rows) == 500
    assert report.source == str(path)

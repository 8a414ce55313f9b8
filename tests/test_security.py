"""Security: no SQL injection through names, no presigned signature in any output, no local
file read on an API's say-so, headers only where they were meant to go, bombs stopped."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner

import resultloader
from resultloader import DownloadError, DuckDBSink, LoadOptions
from resultloader._redact import display_name, redact
from resultloader.cli import main
from resultloader.sources import check_download_url, open_source
from tests.support.faulty_http import FaultyServer, Resource, Step
from tests.support.rows import SEED_ROWS

SECRET = "X-Amz-Signature=SECRET0123&X-Amz-Credential=AKIASECRET"


@pytest.fixture
def server():
    with FaultyServer() as srv:
        yield srv


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def everything_in(db: Path) -> str:
    """Every value of every table in `db`, as one text, to search for a leak."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return "\n".join(str(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
    finally:
        con.close()


# -- names ------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "results; DROP TABLE results",
    'results" ; --',
    "x' OR '1'='1",
    "results\n",
    "",
    "a" * 64,
    "1results",
    "rés",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("option", ["--table", "--key"])
def test_hostile_table_and_key_names_are_refused(write, tmp_path, name, option):
    db = tmp_path / "r.duckdb"
    assert cli("load", str(write("r.jsonl", SEED_ROWS)), "--into", str(db))[0] == 0
    before = everything_in(db)
    code, _, err = cli("load", str(write("s.jsonl", SEED_ROWS)), "--into", str(db), option, name)
    assert code == 1
    kind = "table" if option == "--table" else "key"
    assert err.startswith(f"error: invalid {kind} name ") and err.count("\n") == 1
    assert everything_in(db) == before


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_library_refuses_the_same_names(tmp_path, name):
    with pytest.raises(ValueError, match="invalid table name"):
        DuckDBSink(tmp_path / "r.duckdb", name)
    with pytest.raises(ValueError, match="invalid key name"):
        LoadOptions(key=name)


def test_hostile_text_in_a_source_name_is_only_data(tmp_path):
    name = "x'); DROP TABLE results; --.jsonl"
    path = tmp_path / name
    path.write_text(SEED_ROWS)
    db = tmp_path / "r.duckdb"
    resultloader.load(path, db)
    resultloader.load(path, db)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM results").fetchone() == (2,)
    assert con.execute("SELECT DISTINCT source FROM _resultloader_loads").fetchone() == (str(path),)


# -- presigned URLs never leak ------------------------------------------------------------------


def test_a_successful_load_shows_no_signature_anywhere(server, tmp_path):
    url = server.add("/results.jsonl", Resource(SEED_ROWS.encode())) + "?" + SECRET
    db = tmp_path / "r.duckdb"
    code, out, err = cli("load", url, "--into", str(db), "--json")
    assert code == 0, err
    report = orjson.loads(out)
    assert report["source"] == url.split("?")[0]
    code, out2, err2 = cli("load", url, "--into", str(db))  # the summary line, too
    for text in (out, err, out2, err2, everything_in(db)):
        assert "SECRET" not in text and "X-Amz" not in text
    assert repr(report) and "SECRET" not in repr(resultloader.LoadReport(url.split("?")[0]))


@pytest.mark.parametrize(
    "resource",
    [
        Resource(b"", steps=[Step(404, {}, b"no such key")]),
        Resource(b"", steps=[Step(403, {}, b"<Error>Request has expired</Error>")]),
        Resource(b"<html>login</html>", content_type="text/html"),
        Resource(gzip.compress(SEED_ROWS.encode() * 100)[:300]),  # truncated mid-load
        Resource(SEED_ROWS.encode(), steps=[Step(drop_after=10)] * 30),
    ],
    ids=["404", "403-expired", "html", "truncated-gzip", "dropped"],
)
def test_a_failed_load_shows_no_signature_anywhere(server, tmp_path, resource, monkeypatch):
    monkeypatch.setattr("resultloader.sources.download._sleep", lambda seconds: None)
    url = server.add("/results.jsonl", resource) + "?" + SECRET
    db = tmp_path / "r.duckdb"
    code, out, err = cli("load", url, "--into", str(db), "--json")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "/results.jsonl" in err
    leaked = out + err + (everything_in(db) if db.exists() else "")
    assert "SECRET" not in leaked and "X-Amz" not in leaked


def test_redact_drops_query_strings_from_urls_and_request_paths():
    text = (
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
        "/a/b.jsonl?X-Amz-Signature=abc (Caused by x) https://u:pw@h/p?sig=1 why?"
    )
    assert redact(text) == (
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
        "/a/b.jsonl (Caused by x) https://h/p why?"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:pw@[::1]:8080/r.jsonl?sig=SECRET", "http://[::1]:8080/r.jsonl"),
        ("https://[::ffff:127.0.0.1]:443/r?x=1", "https://[::ffff:127.0.0.1]:443/r"),
        ("https://[fe80::1%25eth0]/r", "https://[fe80::1%25eth0]/r"),
        ("http://h:notaport/r?sig=SECRET", "http://h:notaport/r"),
        ("http://u:pw@[::1/r?sig=SECRET", "http://[::1/r"),
    ],
)
def test_display_names_keep_an_ipv6_host_and_drop_the_secrets(url, shown):
    assert display_name(url) == shown
    assert redact(f"cannot open {url} (refused)") == f"cannot open {shown} (refused)"


def test_header_values_never_appear_in_errors(server):
    url = server.add("/r", Resource(b"", steps=[Step(401, {}, b"bad key")]))
    with pytest.raises(DownloadError) as err:
        open_source(url, headers={"Authorization": "Bearer KEY123", "x-api-key": "KEY456"})
    assert "KEY" not in str(err.value) and "HTTP 401" in str(err.value)


# -- download URLs taken from API responses ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://bucket.s3.amazonaws.com/r.jsonl?X-Amz-Signature=x",
        "http://127.0.0.1:8080/r.jsonl",
        "http://127.5.0.1/r.jsonl",
        "http://localhost:9000/r.jsonl",
        "http://[::1]:9000/r.jsonl",
    ],
)
def test_download_urls_that_are_allowed(url):
    assert check_download_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "results.jsonl",
        "../../secrets.jsonl",
        "s3://bucket/key",
        "ftp://example.com/r.jsonl",
        "gopher://example.com/",
        "javascript:alert(1)",
        "https:///no-host",
        "http://example.com/r.jsonl?sig=SECRET",
        "http://10.0.0.1/r.jsonl",
        "http://localhost.evil.com/r.jsonl",
    ],
)
def test_download_urls_that_are_refused(url):
    with pytest.raises(DownloadError, match="refusing") as err:
        check_download_url(url)
    assert "SECRET" not in str(err.value)


def test_plain_http_can_be_allowed_explicitly():
    url = "http://example.com/r.jsonl"
    assert check_download_url(url, allow_http=True) == url
    with pytest.raises(DownloadError):
        check_download_url("file:///etc/passwd", allow_http=True)


def test_a_redirect_to_a_local_file_is_not_followed(server, tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id":"stolen"}\n')
    url = server.add("/r", Resource(b"", redirect_to=f"file://{secret}"))
    with pytest.raises(DownloadError, match="cannot open"):
        open_source(url)


# -- decompression bombs -----------------------------------------------------------------------


def test_max_bytes_on_the_command_line_stops_a_bomb(tmp_path):
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    line = b'{"id":"x","output":0}\n' * 50_000
    data = b"".join(pack.compress(line) for _ in range(40)) + pack.flush()  # ~44 MB inflated
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(data)
    db = tmp_path / "r.duckdb"
    code, _, err = cli("load", str(bomb), "--into", str(db), "--max-bytes", "1000000")
    assert code == 1
    assert "more than 1,000,000 bytes after decompression" in err
    if db.exists():  # the limit may strike before the load opens the database
        con = duckdb.connect(str(db), read_only=True)
        assert con.execute("SELECT count(*) FROM results").fetchone() == (0,)

"""Download faults against a real server on loopback: the table ends as a clean load, or as it
was with a clear error; never a part of the file."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import random
import time
import zlib
from pathlib import Path

import duckdb
import pytest
import zstandard

from resultloader import DownloadError, ParseError
from resultloader._model import LoadInfo, LoadOptions, LoadReport
from resultloader.pipeline.load import run_load
from resultloader.sinks.duckdb.sink import DuckDBSink
from resultloader.sources import open_source
from resultloader.sources.download import HttpPolicy
from tests.support.faulty_http import (
    HTML_PAGE,
    S3_EXPIRED,
    FaultyServer,
    Resource,
    Step,
    retry_after_date,
)

FAST = HttpPolicy(read_timeout=0.5, backoff=0.01, max_retry_wait=2.0)
MB = 1 << 20


def make_body(rows: int = 60_000, seed: int = 1) -> bytes:
    """JSONL of a few MB that does not compress to nothing (random hex), so gzip stays large."""
    rng = random.Random(seed)
    return b"".join(
        b'{"id":"r%d","output":{"v":"%s"},"metadata":{}}\n' % (i, rng.randbytes(24).hex().encode())
        for i in range(rows)
    )


BODY = make_body()


@pytest.fixture
def server():
    with FaultyServer() as srv:
        yield srv


def table(db: Path) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name='results'").fetchall():
            return []
        return con.execute(
            "SELECT id, output, metadata, url, extra FROM results ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def load_url(
    url: str, db: Path, policy: HttpPolicy = FAST, refresh=None, **options: object
) -> LoadReport:
    opts = LoadOptions(**options)  # type: ignore[arg-type]
    opened = open_source(url, policy=policy, refresh=refresh, max_bytes=opts.max_bytes)
    return run_load(opened, DuckDBSink(db), opts, LoadInfo(opened.name, opts))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> list[tuple[object, ...]]:
    """The table a fault-free load of BODY gives."""
    path = tmp_path_factory.mktemp("clean") / "r.jsonl"
    path.write_bytes(BODY)
    db = path.with_suffix(".duckdb")
    run_load(open_source(path), DuckDBSink(db), LoadOptions(), LoadInfo(str(path), LoadOptions()))
    return table(db)


def read_all(url: str, policy: HttpPolicy = FAST, **kw) -> bytes:
    opened = open_source(url, policy=policy, **kw)
    try:
        return opened.stream.read()
    finally:
        opened.close()


# -- dropped connections -------------------------------------------------------------------


def drops(*offsets: int) -> list[Step]:
    return [Step(drop_after=n) for n in offsets]


def test_drops_resume_with_range_requests(server, tmp_path, clean):
    url = server.add("/r", Resource(BODY, steps=drops(int(1.5 * MB), 100, int(2.5 * MB), 7)))
    report = load_url(url, tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == clean
    assert report.bytes_read == len(BODY)
    ranged = [h.headers for h in server.hits("/r") if "range" in h.headers]
    assert ranged, "expected Range requests"
    assert all(h["If-Match"] == '"v1"' for h in ranged)  # never a mix of two versions


@pytest.mark.parametrize("advertise", ["none", ""])
def test_drops_restart_where_ranges_are_not_supported(server, tmp_path, clean, advertise):
    # "none": the server says so; "": it says nothing and ignores the Range it gets
    res = Resource(BODY, ranges=False, advertise=advertise, steps=drops(int(1.5 * MB), int(3 * MB)))
    url = server.add("/r", res)
    load_url(url, tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == clean


def test_drops_of_a_chunked_body_without_length_restart(server, tmp_path, clean):
    res = Resource(BODY, ranges=False, chunked=True, steps=drops(int(1.5 * MB), int(2.2 * MB)))
    load_url(server.add("/r", res), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == clean


@pytest.mark.parametrize("ranges", [True, False])
def test_a_gzip_stream_that_breaks_continues_at_the_compressed_byte(
    server, tmp_path, clean, ranges
):
    packed = gzip.compress(BODY)
    assert len(packed) > int(1.9 * MB)
    res = Resource(packed, ranges=ranges, steps=drops(int(1.2 * MB), 10, int(1.8 * MB)))
    load_url(server.add("/r.jsonl.gz", res), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == clean


def test_the_resume_budget_is_for_drops_in_a_row_without_a_mib_between(server, tmp_path, clean):
    # four drops, each after more than a MiB of progress, under a budget of two: all recovered
    policy = dataclasses.replace(FAST, max_resumes=2)
    url = server.add("/r", Resource(BODY, steps=drops(*[int(1.1 * MB)] * 12)))
    report = load_url(url, tmp_path / "r.duckdb", policy)
    assert (table(tmp_path / "r.duckdb"), report.bytes_read) == (clean, len(BODY))
    # three drops in a row with only a few bytes between: over the budget
    url = server.add("/s", Resource(BODY, steps=drops(*[int(1.1 * MB)] + [100] * 12)))
    with pytest.raises(DownloadError, match="failed 3 times in a row"):
        load_url(url, tmp_path / "s.duckdb", policy)


def test_too_many_drops_fail_clearly_and_commit_nothing(server, tmp_path):
    url = server.add("/r", Resource(BODY, steps=drops(*[100] * 20)))
    with pytest.raises(DownloadError) as err:
        load_url(url + "?X-Amz-Signature=SECRET", tmp_path / "r.duckdb")
    message = str(err.value)
    assert "gave up at byte" in message and "/r" in message
    assert "SECRET" not in message and "?" not in message
    assert table(tmp_path / "r.duckdb") == []


def test_a_file_that_changes_during_the_download_fails(server, tmp_path):
    res = Resource(BODY, steps=[Step(drop_after=int(1.5 * MB)), Step(headers={"ETag": '"v2"'})])
    with pytest.raises(DownloadError, match="changed on the server"):
        load_url(server.add("/r", res), tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == []


def test_a_restart_that_finds_a_shorter_file_fails(server):
    res = Resource(BODY, ranges=False, etag=None, steps=[Step(drop_after=int(2.5 * MB))])
    url = server.add("/r", res)
    opened = open_source(url, policy=FAST)
    opened.stream.read(2 * MB)
    server.resources["/r"].body = BODY[: int(1.5 * MB)]  # same path, now a shorter file
    with pytest.raises(DownloadError, match=r"changed on the server|shorter than before"):
        opened.stream.read()


# -- stalls, throttling and error statuses --------------------------------------------------


def test_a_stall_times_out_and_the_download_resumes(server):
    url = server.add("/r", Resource(BODY, steps=[Step(drop_after=int(1.5 * MB), stall=5)]))
    assert read_all(url) == BODY


def test_a_server_that_always_stalls_ends_in_an_error(server):
    url = server.add("/r", Resource(BODY, steps=[Step(drop_after=100, stall=5)] * 20))
    policy = HttpPolicy(read_timeout=0.3, backoff=0.01, retries=1, max_resumes=2)
    with pytest.raises(DownloadError, match=r"failed \d+ times in a row; gave up at byte "):
        read_all(url, policy)


# -- the low-speed limit (issue 20, point 2) ----------------------------------------------------

# below 1,024 bytes/s for half a second of reading: cut, then resumed; the read timeout is far
SLOW = HttpPolicy(read_timeout=30, backoff=0.01, low_speed_limit=1024, low_speed_time=0.5)


def trickle(after: int = 0, every: float = 0.05, piece: int = 1) -> Step:
    """`after` bytes at once, then `piece` bytes every `every` seconds (20 bytes/s)."""
    return Step(trickle=every, trickle_after=after, piece=piece)


def range_starts(server: FaultyServer, path: str) -> list[int | None]:
    found = [{k.lower(): v for k, v in h.headers.items()}.get("range") for h in server.hits(path)]
    return [None if r is None else int(r.removeprefix("bytes=").rstrip("-")) for r in found]


def test_the_low_speed_limit_defaults_to_curls_usual_values():
    assert (HttpPolicy().low_speed_limit, HttpPolicy().low_speed_time) == (1024.0, 60.0)


def test_a_trickle_is_cut_and_the_download_resumes_with_a_range_request(server):
    url = server.add("/r", Resource(BODY, steps=[trickle(after=int(1.5 * MB))]))
    started = time.monotonic()
    assert read_all(url, SLOW) == BODY
    assert time.monotonic() - started < 10  # cut after about half a second, not 4 MB later
    starts = range_starts(server, "/r")  # (smart_open's reopening GETs, then seeks)
    assert starts[0] is None and (starts[-1] or 0) >= int(1.5 * MB)


def test_a_trickle_from_a_server_without_ranges_restarts_from_the_first_byte(server):
    url = server.add("/r", Resource(BODY, ranges=False, steps=[trickle(after=int(1.5 * MB))]))
    assert read_all(url, SLOW) == BODY
    assert len(server.hits("/r")) >= 2


def test_a_server_that_always_trickles_fails_after_the_resume_budget(server):
    url = server.add("/r", Resource(BODY, steps=[trickle(after=1000)] * 30))
    policy = dataclasses.replace(SLOW, max_resumes=2)
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        read_all(url, policy)
    assert time.monotonic() - started < 10
    assert str(err.value).startswith(f"{url}: the connection failed 3 times in a row; gave up at")
    assert str(err.value).endswith(": the download was slower than 1,024 bytes/s for 0.5s")
    ranged = [s for s in range_starts(server, "/r") if s is not None]
    assert len(ranged) == 2 and all(s >= 1000 for s in ranged)


def test_a_server_just_above_the_limit_is_not_cut(server):
    body = BODY[:3000]  # 2,000 bytes/s for 1.5 s: a whole read of it would take longer than 0.5s
    url = server.add("/r", Resource(body, steps=[trickle(piece=100)]))
    assert read_all(url, SLOW) == body
    assert len(server.hits("/r")) == 1


def test_a_slow_reader_is_not_taken_for_a_slow_server(server):
    url = server.add("/r", Resource(BODY))
    opened = open_source(url, policy=SLOW)
    try:
        head = b""
        for _ in range(4):  # 1.2 s of the consumer's own work, between fast reads
            head += opened.stream.read(1000)
            time.sleep(0.3)
        assert head + opened.stream.read() == BODY
    finally:
        opened.close()
    assert len(server.hits("/r")) == 1


@pytest.mark.parametrize(
    "steps",
    [
        [Step(429, {"Retry-After": "1"}, b"slow down")],
        [Step(503, {"Retry-After": retry_after_date(1)}, b"busy")],
        [Step(500, {}, b"oops"), Step(502, {}, b"bad gateway"), Step(503, {}, b"")],
    ],
    ids=["429-seconds", "503-http-date", "5xx"],
)
def test_throttling_and_server_errors_are_retried(server, steps):
    url = server.add("/r", Resource(BODY, steps=list(steps)))
    assert read_all(url) == BODY
    assert len(server.hits("/r")) == len(steps) + 1


def test_a_long_retry_after_is_cut_to_the_policy_limit(server):
    url = server.add("/r", Resource(BODY, steps=[Step(503, {"Retry-After": "3600"}, b"")]))
    assert read_all(url, HttpPolicy(read_timeout=0.5, max_retry_wait=0.2)) == BODY


def test_persistent_503_fails_after_retries(server):
    url = server.add("/r", Resource(BODY, steps=[Step(503, {}, b"down")] * 10))
    with pytest.raises(DownloadError, match=r"HTTP 503.*still after retrying"):
        read_all(url, HttpPolicy(read_timeout=0.5, backoff=0.01, retries=2))
    assert len(server.hits("/r")) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 418])
def test_other_4xx_fail_at_once_with_one_line(server, status):
    url = server.add("/r", Resource(BODY, steps=[Step(status, {}, b"no\nway")]))
    with pytest.raises(DownloadError) as err:
        read_all(url + "?sig=SECRET")
    assert f"HTTP {status}" in str(err.value) and "\n" not in str(err.value)
    assert "SECRET" not in str(err.value)
    assert len(server.hits("/r")) == 1


# -- expired links ----------------------------------------------------------------------------


def test_an_expired_link_is_refreshed_and_the_load_continues(server, tmp_path, clean):
    steps = [
        Step(drop_after=int(1.5 * MB)),
        Step(403, {"Content-Type": "application/xml"}, S3_EXPIRED),
    ]
    url = server.add("/r", Resource(BODY, steps=steps))
    fresh = iter([url + "?sig=new"])
    load_url(url + "?sig=old", tmp_path / "r.duckdb", refresh=lambda: next(fresh))
    assert table(tmp_path / "r.duckdb") == clean
    last = server.hits("/r")[-1]
    assert last.query == {"sig": ["new"]} and last.headers["range"].startswith("bytes=")


def test_an_expired_link_that_cannot_be_refreshed_commits_nothing(server, tmp_path):
    steps = [Step(drop_after=int(1.5 * MB)), Step(403, {}, S3_EXPIRED)]
    url = server.add("/r", Resource(BODY, steps=steps))
    with pytest.raises(DownloadError, match=r"HTTP 403.*link has expired"):
        load_url(url + "?X-Amz-Signature=SECRET", tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == []


def test_headers_are_not_sent_to_a_refreshed_link_on_another_host(server):
    steps = [Step(drop_after=int(1.5 * MB)), Step(403, {}, S3_EXPIRED)]
    server.add("/r", Resource(BODY, steps=steps))
    fresh = server.url("/r", host="localhost") + "?sig=new"
    got = read_all(server.url("/r"), headers={"x-api-key": "KEY"}, refresh=lambda: fresh)
    assert got == BODY
    keys = [(h.headers["Host"].split(":")[0], h.headers.get("x-api-key")) for h in server.requests]
    assert ("localhost", "KEY") not in keys and ("127.0.0.1", "KEY") in keys
    assert keys[-1] == ("localhost", None)


def test_refreshing_is_bounded(server):
    url = server.add("/r", Resource(BODY, steps=[Step(403, {}, S3_EXPIRED)] * 10))
    calls = []

    def refresh() -> str:
        calls.append(1)
        return url

    with pytest.raises(DownloadError, match="expired"):
        read_all(url, refresh=refresh)
    assert len(calls) == FAST.max_refreshes


# -- not the result file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctype", "body", "what"),
    [
        ("text/html; charset=utf-8", HTML_PAGE, "an HTML page"),
        ("application/octet-stream", HTML_PAGE, "an HTML page"),
        ("application/xml", S3_EXPIRED, "an XML document"),
        ("text/html", b"", "an empty text/html response"),
    ],
)
def test_an_error_page_with_status_200_is_refused(server, tmp_path, ctype, body, what):
    url = server.add("/r", Resource(body, content_type=ctype))
    with pytest.raises(DownloadError, match=f"the server sent {what}, not a result file"):
        load_url(url, tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == []


def test_a_json_error_object_is_a_bad_row_not_data(server, tmp_path):
    body = b'{"error": "internal", "message": "try later"}\n'
    url = server.add("/r", Resource(body, content_type="application/json"))
    with pytest.raises(ParseError, match="no 'id' field"):
        load_url(url, tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == []


def test_an_empty_body_is_an_empty_file(server, tmp_path):
    report = load_url(server.add("/r", Resource(b"")), tmp_path / "r.duckdb")
    assert (report.rows_read, report.rows_upserted, report.bytes_read) == (0, 0, 0)
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM _resultloader_loads").fetchall() == [("committed",)]


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize(
    ("kind", "pack"),
    [("gzip", gzip.compress), ("bz2", bz2.compress), ("zstd", zstandard.compress)],
)
@pytest.mark.parametrize("where", ["http", "file"])
def test_a_truncated_compressed_stream_commits_nothing(server, tmp_path, kind, pack, where):
    data = _cut(pack(BODY))
    path = tmp_path / "r.jsonl.x"
    path.write_bytes(data)
    url = server.add("/r", Resource(data)) if where == "http" else str(path)
    with pytest.raises(DownloadError, match=f"truncated {kind} stream"):
        load_url(url, tmp_path / "r.duckdb")
    assert table(tmp_path / "r.duckdb") == []


def test_a_corrupt_gzip_stream_commits_nothing(tmp_path):
    data = bytearray(gzip.compress(BODY))
    middle = len(data) // 2
    data[middle : middle + 64] = random.Random(5).randbytes(64)
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(bytes(data))
    # skip: the garbage the corrupt block inflates to must not stop the load before the
    # decompressor notices (at the latest at the CRC check)
    with pytest.raises(DownloadError, match=r"(corrupt|truncated) gzip stream"):
        load_url(str(path), tmp_path / "r.duckdb", on_error="skip")
    assert table(tmp_path / "r.duckdb") == []


# -- decompression bombs ------------------------------------------------------------------------


def bomb(size: int, line: bytes | None = None) -> bytes:
    """About `size` bytes of zeros (or of `line` repeated), gzip-compressed, streamed."""
    out, pack = [], zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = line * (MB // len(line)) if line else bytes(MB)  # whole lines only
    for _ in range(size // MB):
        out.append(pack.compress(piece))
    out.append(pack.flush())
    return b"".join(out)


def test_a_gzip_bomb_is_stopped_by_max_bytes(server, tmp_path):
    data = bomb(64 * MB, b'{"id":"x","output":0}\n')
    assert len(data) < MB
    with pytest.raises(DownloadError, match=r"more than 8,388,608 bytes after decompression"):
        load_url(server.add("/r", Resource(data)), tmp_path / "r.duckdb", max_bytes=8 * MB)
    assert table(tmp_path / "r.duckdb") == []


def test_a_gzip_bomb_without_newlines_is_stopped_by_the_line_limit(server, tmp_path):
    data = bomb(64 * MB, b"x")  # not zeros: NUL bytes are refused at once as not text
    with pytest.raises(ParseError, match="longer than max_line_bytes"):
        load_url(server.add("/r", Resource(data)), tmp_path / "r.duckdb", max_line_bytes=4 * MB)
    assert table(tmp_path / "r.duckdb") == []


# -- redirects ----------------------------------------------------------------------------------


def test_redirects_are_followed_but_bounded(server):
    target = server.add("/data", Resource(BODY))
    server.add("/hop", Resource(b"", redirect_to="/data"))
    assert read_all(server.url("/hop")) == BODY
    server.add("/loop", Resource(b"", redirect_to="/loop"))
    with pytest.raises(DownloadError, match="more than 5 redirects"):
        read_all(server.url("/loop") + "?sig=SECRET")
    assert len(server.hits("/loop")) == 6
    assert target


def test_headers_do_not_follow_a_redirect_to_another_host(server):
    server.add("/data", Resource(BODY))
    server.add("/same", Resource(b"", redirect_to=server.url("/data")))
    server.add("/other", Resource(b"", redirect_to=server.url("/data", host="localhost")))
    read_all(server.url("/same"), headers={"x-api-key": "KEY"})
    read_all(server.url("/other"), headers={"x-api-key": "KEY"})
    keys = [h.headers.get("x-api-key") for h in server.requests]
    # /same, /data (same host: kept), /other, /data on localhost (another host: dropped)
    assert keys == ["KEY", "KEY", "KEY", None]

"""Issue 11 (5-12) against real servers on loopback: the URL rule on every URL and redirect
that comes from an API, ids that would climb to other endpoints, the key in a failed job's
error text, and the bounds on time and memory of downloads and status calls."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import duckdb
import pytest
from click.testing import CliRunner

from resultloader.cli import main
from resultloader.sources.download import HttpPolicy
from tests.support.fake_api import KEY, PULSE_KEY, FakeApis, Reply
from tests.support.faulty_http import FaultyServer, Resource, Step, ipv6_loopback

NS, REQ = "products", "req_01"
STATUS = f"/v1/data/{NS}/requests/{REQ}"
SECRET = b'{"id":"secret","output":"from a local-only service"}\n'


@pytest.fixture
def fake() -> Iterator[FakeApis]:
    apis = FakeApis()
    yield apis
    apis.close()
    assert apis.leaks == []


@pytest.fixture
def local() -> Iterator[FaultyServer]:
    """A local-only service: nothing from a public API's answers may reach it."""
    with FaultyServer() as server:
        server.add("/admin", Resource(SECRET))
        yield server


def cli(tmp_path, *args: str, **env: str):
    keys = {"SAFETYKIT_API_KEY": KEY, "PULSE_API_KEY": PULSE_KEY, **env}
    into = ["--into", str(tmp_path / "r.duckdb")]
    return CliRunner().invoke(main, [*args, *into], env=keys)


def stored(tmp_path) -> list[str]:
    path = tmp_path / "r.duckdb"
    if not path.exists():
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name='results'")
        if not found.fetchall():
            return []
        return [r[0] for r in con.execute("SELECT id FROM results").fetchall()]
    finally:
        con.close()


def sk(status: str, **fields: object) -> dict[str, object]:
    return {"namespace": NS, "request_id": REQ, "status": status, **fields}


def sk_args(base: str, *more: str) -> list[str]:
    return [
        "ingest",
        "safetykit",
        "--namespace",
        NS,
        "--request-id",
        REQ,
        "--base-url",
        base,
        *more,
    ]


# -- 5: redirects are checked like the first URL -----------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["http://2130706433:{port}/admin", "http://169.254.169.254/latest/meta-data/iam"],
)
def test_a_download_redirect_is_checked_like_the_first_url(fake, local, tmp_path, target):
    hop = FaultyServer()
    with hop:
        url = hop.add("/r", Resource(b"", redirect_to=target.format(port=local.port)))
        fake.script(STATUS, sk("succeeded", data_url=url))
        started = time.monotonic()
        result = cli(tmp_path, *sk_args(fake.api_url, "-q"))
    assert result.exit_code == 1, result.output
    assert "refusing" in result.stderr and result.stderr.count("\n") == 1
    assert local.hits("/admin") == [] and stored(tmp_path) == []
    assert time.monotonic() - started < 8  # refused, not a connection attempt timing out


def test_a_status_redirect_to_the_metadata_address_is_refused(fake, tmp_path):
    fake.script(STATUS, Reply(302, b"", {"Location": "http://169.254.169.254/latest/"}))
    result = cli(tmp_path, *sk_args(fake.api_url, "-q"))
    assert result.exit_code == 1
    assert "refusing the plain http URL http://169.254.169.254/latest/" in result.stderr


# -- 6 and 9: local addresses from a public API's answers are off by default -------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/admin",
        "http://localhost:{port}/admin",
        "https://127.0.0.1:{port}/admin",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/r.jsonl",
        "https://[::1]:{port}/admin",
    ],
)
def test_a_public_apis_answer_may_not_point_at_local_addresses(local, tmp_path, url):
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps(sk("succeeded", data_url=url.format(port=local.port))))
    result = cli(tmp_path, "ingest", "safetykit", "--status-file", str(hook), "-q")
    assert result.exit_code == 1, result.output
    assert "refusing" in result.stderr and "--allow-local-urls" in result.stderr
    assert local.hits("/admin") == [] and stored(tmp_path) == []


def test_local_addresses_can_be_allowed_explicitly(local, tmp_path):
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps(sk("succeeded", data_url=local.url("/admin"))))
    args = ["ingest", "safetykit", "--status-file", str(hook), "--allow-local-urls", "-q"]
    result = cli(tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert stored(tmp_path) == ["secret"]


def test_an_api_on_a_local_address_may_point_at_local_addresses(fake, local, tmp_path):
    fake.script(STATUS, sk("succeeded", data_url=local.url("/admin")))
    result = cli(tmp_path, *sk_args(fake.api_url, "-q"))
    assert result.exit_code == 0, result.output
    assert stored(tmp_path) == ["secret"]


# -- 7: the key in a failed job's error text ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path", "payload"),
    [
        (
            ["safetykit", "--namespace", NS, "--request-id", REQ],
            STATUS,
            sk("failed", error=f"upload rejected for Bearer {KEY}"),
        ),
        (
            ["safetykit-batch", "--batch-id", "b1"],
            "/v1/batches/b1",
            {"batch_id": "b1", "batch_status": "ERROR", "error": f"key {KEY} lacks scope"},
        ),
        (
            ["pulse", "--job-id", "j1"],
            "/job/j1",
            {"job_id": "j1", "status": "failed", "error": {"message": f"x-api-key={PULSE_KEY}"}},
        ),
    ],
)
def test_a_failed_jobs_error_text_never_shows_the_key(fake, tmp_path, args, path, payload):
    fake.script(path, payload)
    result = cli(tmp_path, "ingest", *args, "--base-url", fake.api_url, "-q")
    assert result.exit_code == 1
    assert "failed" in result.stderr or "ERROR" in result.stderr
    assert KEY not in result.output and PULSE_KEY not in result.output
    assert "***" in result.stderr


# -- 8: ids that would climb to another endpoint -----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["safetykit", "--namespace", NS, "--request-id", ".."],
        ["safetykit", "--namespace", "..", "--request-id", "x"],
        ["safetykit", "--namespace", ".", "--request-id", "x"],
        ["safetykit-batch", "--batch-id", ".."],
        ["pulse", "--job-id", ".."],
        ["pulse", "--job-id", "."],
    ],
)
def test_dot_ids_are_refused_before_any_request(fake, tmp_path, args):
    result = cli(tmp_path, "ingest", *args, "--base-url", fake.api_url, "-q")
    assert result.exit_code == 1
    assert "is not a valid" in result.stderr and result.stderr.count("\n") == 1
    assert fake.api_seen == []


def test_dot_ids_in_a_saved_status_are_refused(fake, tmp_path):
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps({"request_id": "..", "namespace": NS, "status": "succeeded"}))
    args = ["ingest", "safetykit", "--status-file", str(hook), "--base-url", fake.api_url]
    result = cli(tmp_path, *args, "-q")
    assert result.exit_code == 1 and "is not a valid" in result.stderr


# -- 10-12: time and memory bounds ---------------------------------------------------------------


def raw_server(serve: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A TCP server on loopback whose connections `serve(sock, closing)` handles; its port."""
    closing = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):  # the client hung up
                serve(self.request, closing)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        closing.set()
        server.shutdown()
        server.server_close()


def trickle(sock: socket.socket, closing: threading.Event) -> None:
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n")
    while not closing.wait(0.5):
        sock.sendall(b" ")


def silent(sock: socket.socket, closing: threading.Event) -> None:
    sock.recv(65536)
    closing.wait(300)  # accepts, reads the request, never answers


def endless(sock: socket.socket, closing: threading.Event) -> None:
    sock.recv(65536)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    start = b'{"status": "queued", "x": "'

    def chunk(piece: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(piece), piece)

    sock.sendall(head + chunk(start))
    more = chunk(b"a" * 65536)
    while not closing.is_set():
        sock.sendall(more)


def test_a_trickling_download_is_ended_by_its_deadline(tmp_path):
    assert HttpPolicy().deadline == 6 * 3600.0  # the documented default
    for port in raw_server(trickle):
        url = f"http://127.0.0.1:{port}/slow.jsonl"
        started = time.monotonic()
        result = cli(tmp_path, "load", url, "--download-timeout", "2", "-q")
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "the download took longer than 2s in all" in result.stderr
    assert elapsed < 30  # bounded by the deadline, not by the server


ROWS = b"".join(b'{"id":"r%d","output":%d}\n' % (i, i) for i in range(3000))


def test_a_trickling_download_is_cut_by_the_speed_limit_and_resumed(tmp_path):
    with FaultyServer() as server:
        url = server.add("/r.jsonl", Resource(ROWS, steps=[Step(trickle=0.05, trickle_after=1000)]))
        args = ("--speed-limit", "1024", "--speed-time", "0.5")
        started = time.monotonic()
        result = cli(tmp_path, "load", url, *args)
        elapsed = time.monotonic() - started
        ranges = [h.headers.get("range") for h in server.hits("/r.jsonl")]
    assert result.exit_code == 0, result.output
    assert f"{url}: the download was slower than 1,024 bytes/s for 0.5s; reconnecting at byte " in (
        result.stderr
    )
    assert len(stored(tmp_path)) == 3000 and elapsed < 15
    assert ranges[0] is None and (ranges[-1] or "").startswith("bytes=")


def test_a_download_that_stays_too_slow_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("resultloader.sources.download._sleep", lambda seconds: None)
    with FaultyServer() as server:
        steps = [Step(trickle=0.05, trickle_after=1000)] * 30
        url = server.add("/r.jsonl", Resource(ROWS, steps=steps))
        hook = tmp_path / "hook.json"
        hook.write_text(json.dumps(sk("succeeded", data_url=url)))
        args = ["--status-file", str(hook), "--allow-local-urls", "--speed-time", "0.5", "-q"]
        started = time.monotonic()
        result = cli(tmp_path, "ingest", "safetykit", *args)
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {url}: the connection failed 6 times in a row")
    assert result.stderr.endswith("the download was slower than 1,024 bytes/s for 0.5s\n")
    assert result.stderr.count("\n") == 1 and stored(tmp_path) == []
    assert elapsed < 20  # six half-second windows, not the six-hour deadline


def test_ingest_timeout_covers_a_status_call_that_never_answers(tmp_path):
    for port in raw_server(silent):
        started = time.monotonic()
        result = cli(tmp_path, *sk_args(f"http://127.0.0.1:{port}", "--timeout", "3", "-q"))
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "read timeout" in result.stderr and "connection failed" not in result.stderr
    assert elapsed < 20  # about the 3 s asked for, not 3 reads of 60 s


def test_a_status_answer_that_never_ends_is_cut_at_the_size_limit(tmp_path):
    for port in raw_server(endless):
        result = cli(tmp_path, *sk_args(f"http://127.0.0.1:{port}", "--timeout", "120", "-q"))
    assert result.exit_code == 1
    assert "larger than 64 MiB" in result.stderr


# -- IPv6 literals (issue 20, point 3) ----------------------------------------------------------

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")


@needs_ipv6
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_ipv4_mapped_loopback_address_is_refused_by_name(local, tmp_path, scheme):
    url = f"{scheme}://[::ffff:127.0.0.1]:{local.port}/admin"
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps(sk("succeeded", data_url=url)))
    result = cli(tmp_path, "ingest", "safetykit", "--status-file", str(hook), "-q")
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: refusing {url}: it points at ::ffff:127.0.0.1, a loopback address "
        "(IPv4-mapped), and it came from the API's answer (or a redirect); allow local "
        "addresses explicitly (--allow-local-urls) if you trust it\n"
    )
    assert local.hits("/admin") == [] and stored(tmp_path) == []


@needs_ipv6
def test_an_ipv4_mapped_loopback_address_loads_where_local_urls_are_allowed(local, tmp_path):
    url = f"http://[::ffff:127.0.0.1]:{local.port}/admin"
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps(sk("succeeded", data_url=url)))
    args = ["ingest", "safetykit", "--status-file", str(hook), "--allow-local-urls", "-q"]
    result = cli(tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert stored(tmp_path) == ["secret"] and len(local.hits("/admin")) == 1


@pytest.fixture
def local6() -> Iterator[FaultyServer]:
    """The local-only service, listening on the IPv6 loopback address only."""
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    with FaultyServer("::1") as server:
        server.add("/admin", Resource(SECRET))
        yield server


def test_an_ipv6_loopback_url_loads_from_a_server_on_ipv6(local6, tmp_path):
    url = local6.url("/admin")
    assert url == f"http://[::1]:{local6.port}/admin"
    result = cli(tmp_path, "load", url + "?sig=S", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == url
    assert stored(tmp_path) == ["secret"]


def test_an_ipv6_loopback_url_from_an_api_is_refused_unless_allowed(local6, tmp_path):
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps(sk("succeeded", data_url=local6.url("/admin"))))
    refused = cli(tmp_path, "ingest", "safetykit", "--status-file", str(hook), "-q")
    assert refused.exit_code == 1
    assert f"refusing {local6.url('/admin')}: it points at ::1, a loopback address," in (
        refused.stderr
    )
    assert local6.hits("/admin") == [] and stored(tmp_path) == []
    args = ["ingest", "safetykit", "--status-file", str(hook), "--allow-local-urls", "-q"]
    allowed = cli(tmp_path, *args)
    assert allowed.exit_code == 0, allowed.output
    assert stored(tmp_path) == ["secret"]

"""A real HTTP server on loopback that misbehaves on request: for download fault tests.

Each `Resource` is served at a path. Its `steps` script the next requests, one step per request
(a dropped connection after N bytes, a stall, an error status with a body, a redirect); when the
script is used up, requests are served normally, honouring `Range` if `ranges` is on.
Every request is recorded (path, query, headers) for assertions.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

S3_EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2024-01-01T00:00:00Z</Expires></Error>"
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><body><h1>Sign in</h1></body></html>\n"


@dataclass
class Step:
    """What to do with one request instead of serving the resource normally."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the resource's body (honouring Range)
    drop_after: int | None = None  # cut the connection after this many body bytes
    stall: float = 0.0  # then stall this long before cutting
    trickle: float = 0.0  # send the body `piece` bytes at a time, this many seconds apart,
    piece: int = 1
    trickle_after: int = 0  # after sending this many bytes at once


@dataclass
class Resource:
    body: bytes
    content_type: str = "application/x-ndjson"
    ranges: bool = True  # honour Range requests
    advertise: str | None = None  # Accept-Ranges to send ("" none); default from `ranges`
    etag: str | None = '"v1"'
    chunked: bool = False  # no Content-Length: Transfer-Encoding chunked
    steps: list[Step] = field(default_factory=list)
    redirect_to: str | None = None  # always redirect (loops and chains)


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FaultyServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.resources: dict[str, Resource] = {}
        self.requests: list[Seen] = []
        self.closing = threading.Event()
        self.host = host
        serve = _Quiet6 if ":" in host else _Quiet  # an IPv6 address: `::1`
        self._server = serve((host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str, host: str | None = None) -> str:
        host = host or self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{path}"

    def add(self, path: str, resource: Resource) -> str:
        self.resources[path] = resource
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up on purpose in these tests


class _Quiet6(_Quiet):
    address_family = socket.AF_INET6


def ipv6_loopback() -> bool:
    """Whether this machine can listen on ::1 (a container may have no IPv6 loopback)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def retry_after_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


def _make_handler(server: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            server.requests.append(Seen(parts.path, parse_qs(parts.query), dict(self.headers)))
            resource = server.resources.get(parts.path)
            if resource is None:
                self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
                return
            if resource.redirect_to:
                self._send(302, {"Location": resource.redirect_to}, b"")
                return
            step = resource.steps.pop(0) if resource.steps else Step()
            if step.body is not None:
                self._send(step.status, step.headers, step.body, step)
                return
            self._serve(resource, step)

        def _serve(self, resource: Resource, step: Step) -> None:
            body, status = resource.body, 200
            headers = {"Content-Type": resource.content_type}
            if resource.etag:
                headers["ETag"] = resource.etag
            advertise = "bytes" if resource.ranges else "none"
            if resource.advertise is not None:
                advertise = resource.advertise
            if advertise:
                headers["Accept-Ranges"] = advertise
            headers.update(step.headers)
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if wanted and resource.ranges:
                match = self.headers.get("If-Match")
                if match and match != resource.etag:
                    self._send(412, {}, b"")
                    return
                start = int(wanted[1])
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                body, status = body[start:], 206
            self._send(status, headers, body, step, chunked=resource.chunked)

        def _send(
            self,
            status: int,
            headers: dict[str, str],
            body: bytes,
            step: Step | None = None,
            chunked: bool = False,
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = step.drop_after if step else None
            data = body if cut is None else body[:cut]
            if chunked:
                self._write_chunked(data, last=cut is None)
            elif step and step.trickle:
                self._write_slowly(data, step)
            else:
                self.wfile.write(data)
            self.wfile.flush()
            if cut is not None:
                if step and step.stall:
                    server.closing.wait(step.stall)
                self._cut()

        def _write_slowly(self, data: bytes, step: Step) -> None:
            self.wfile.write(data[: step.trickle_after])
            for i in range(step.trickle_after, len(data), step.piece):
                self.wfile.write(data[i : i + step.piece])
                self.wfile.flush()
                if server.closing.wait(step.trickle):
                    return

        def _write_chunked(self, data: bytes, last: bool) -> None:
            for i in range(0, len(data), 65536):
                piece = data[i : i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if last:
                self.wfile.write(b"0\r\n\r\n")

        def _cut(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler

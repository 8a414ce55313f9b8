"""A provider's API on loopback, for tests (exported by `resultloader.testing`).

Two real HTTP servers on 127.0.0.1: the API, whose paths answer from scripts, and a second host
standing in for S3 or GCS, serving files behind presigned-style links that can expire or drop
mid-body. Every request is recorded with its headers; a download request that carries one of
the API's secrets (by header name or value) is a leak, kept in `leaks`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2026-01-15T12:30:00Z</Expires></Error>"
)
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "x-shopify-access-token"}
)


@dataclass
class Reply:
    """One scripted answer: a dict/list body is sent as JSON, bytes and str as they are;
    `drop_after`: send that many bytes of the body, then drop the connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None


@dataclass
class Seen:
    """One request as the server saw it, and when (`time.monotonic()`, as it arrived)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)


Scripted = dict[str, Any] | Reply | Callable[[], "dict[str, Any] | Reply"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: Callable[[BaseHTTPRequestHandler, bytes], Reply]

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length))

    def _answer(self, sent: bytes) -> None:
        reply = type(self).owner(self, sent)
        body = reply.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        body = body or b""
        self.send_response(reply.status)
        headers = {"Content-Length": str(len(body)), **reply.headers}
        if "Content-Type" not in headers and reply.status != 302:
            headers["Content-Type"] = "application/json"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.drop_after is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[: reply.drop_after])
        self.wfile.flush()
        self.close_connection = True  # the client sees a body shorter than its Content-Length

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


def serve(handle: Callable[[BaseHTTPRequestHandler, bytes], Reply]) -> ThreadingHTTPServer:
    """A threaded HTTP server on a free loopback port, answering with `handle`."""
    handler = type("Handler", (_Handler,), {"owner": staticmethod(handle)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    # a short poll interval makes shutdown() quick
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


class FakeApi:
    """`auth`: the headers every API request must carry (name -> exact value), else 401.

    `script(path, *replies)`: the answers to GET or POST `path`, one per request, the last one
    repeated; a reply is a payload dict (200 JSON), a `Reply`, or a function returning either.
    `link(name)`: a presigned-style URL to a file added with `add_file`, on the download host.
    """

    def __init__(self, auth: Mapping[str, str] | None = None) -> None:
        self.auth = dict(auth or {})
        self.scripts: dict[str, list[Scripted]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tokens: dict[str, str] = {}  # token -> file name, for links still valid
        self.drops: dict[str, int] = {}  # token -> bytes served before the link dies mid-body
        self.api_seen: list[Seen] = []
        self.files_seen: list[Seen] = []
        self.leaks: list[Seen] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.api = serve(self._api)
        self.download = serve(self._file)

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api.server_address[1]}"

    @property
    def files_url(self) -> str:
        return f"http://127.0.0.1:{self.download.server_address[1]}"

    def close(self) -> None:
        for server in (self.api, self.download):
            server.shutdown()
            server.server_close()

    # -- scripting -----------------------------------------------------------------------------

    def script(self, path: str, *replies: Scripted) -> None:
        self.scripts[path] = list(replies)

    def add_file(self, name: str, data: bytes | str, content_type: str = "") -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.files[name] = (raw, content_type or "application/octet-stream")

    def link(self, name: str, *, valid: bool = True, expire_after: int | None = None) -> str:
        """A presigned-style URL to `name` on the download host; `valid=False`: expired.
        `expire_after=N`: the first download drops the connection after N bytes, and the link
        has expired by the time the client comes back for the rest."""
        token = f"t{next(self._counter)}"
        if valid:
            self.tokens[token] = name
        if expire_after is not None:
            self.drops[token] = expire_after
        return f"{self.files_url}/{name}?X-Amz-Expires=3600&X-Amz-Signature={token}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.api_seen if s.path == path)

    # -- the two servers -----------------------------------------------------------------------

    def _seen(self, request: BaseHTTPRequestHandler, body: bytes) -> Seen:
        parts = urlsplit(request.path)
        headers = dict(request.headers.items())
        return Seen(request.command, parts.path, parts.query, headers, body)

    def _api(self, request: BaseHTTPRequestHandler, body: bytes) -> Reply:
        seen = self._seen(request, body)
        with self._lock:
            self.api_seen.append(seen)
        refused = self.check_key(seen)
        return refused if refused is not None else self.answer(seen)

    def check_key(self, seen: Seen) -> Reply | None:
        """401 unless the request carries every `auth` header with its value."""
        headers = {k.lower(): v for k, v in seen.headers.items()}
        if all(headers.get(k.lower()) == v for k, v in self.auth.items()):
            return None
        return Reply(401, {"error": {"message": "invalid or missing API key"}})

    def answer(self, seen: Seen) -> Reply:
        """The next scripted reply for the request's path (404 without a script)."""
        with self._lock:
            script = self.scripts.get(seen.path)
            if not script:
                return Reply(404, {"error": {"message": f"no such resource {seen.path}"}})
            step = script.pop(0) if len(script) > 1 else script[0]
        reply = step() if callable(step) else step
        return reply if isinstance(reply, Reply) else Reply(200, reply)

    def _leaked(self, seen: Seen) -> bool:
        secrets = [v for v in self.auth.values() if v]
        for name, value in seen.headers.items():
            if name.lower() in SECRET_HEADERS or any(s in value for s in secrets):
                return True
        return False

    def _file(self, request: BaseHTTPRequestHandler, body: bytes) -> Reply:
        seen = self._seen(request, body)
        with self._lock:
            self.files_seen.append(seen)
        if self._leaked(seen):
            self.leaks.append(seen)
            return Reply(400, b"<Error><Code>InvalidArgument</Code></Error>")
        token = parse_qs(seen.query).get("X-Amz-Signature", [""])[0]
        name = seen.path.lstrip("/")
        if self.tokens.get(token) != name:
            return Reply(403, EXPIRED_XML, {"Content-Type": "application/xml"})
        data, ctype = self.files[name]
        with self._lock:
            drop_after = self.drops.pop(token, None)
            if drop_after is not None:
                del self.tokens[token]
        return Reply(200, data, {"Content-Type": ctype}, drop_after)

"""A real HTTP API on loopback that plays SafetyKit (data requests, batches) and Pulse, plus a
second server on another port standing in for S3, the presigned download host.

Each status path has a script: a list of replies served one per request, the last one repeated.
A reply is a payload dict (200 JSON), a `Reply` (any status, body, headers) or a function
returning either (for links minted at request time). The download host serves files behind
tokens that can expire (403 with S3's XML body) and records every request's headers: an API key
reaching it is a leak, recorded in `leaks`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "sk-test-0123456789abcdef"
PULSE_KEY = "pulse-test-fedcba9876543210"
EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2026-01-15T12:30:00Z</Expires></Error>"
)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict/list is sent as JSON; bytes and str as they are
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # send this many bytes of the body, then drop the connection


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]


Scripted = dict[str, Any] | Reply | Callable[[], "dict[str, Any] | Reply"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: Callable[[BaseHTTPRequestHandler], Reply]

    def do_GET(self) -> None:
        reply = type(self).owner(self)
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

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


def _serve(handle: Callable[[BaseHTTPRequestHandler], Reply]) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"owner": staticmethod(handle)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    # a short poll interval makes shutdown() quick
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


class FakeApis:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Scripted]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tokens: dict[str, str] = {}  # token -> file name, for links still valid
        self.drops: dict[str, int] = {}  # token -> bytes served before the link dies mid-body
        self.proxied: dict[str, tuple[bytes, bool]] = {}  # job id -> (document, redirect?)
        self.api_seen: list[Seen] = []
        self.files_seen: list[Seen] = []
        self.leaks: list[Seen] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.api = _serve(self._api)
        self.download = _serve(self._file)

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

    def proxy(self, job_id: str, document: bytes, *, redirect: bool = False) -> str:
        """A Pulse proxy URL on the API host: needs x-api-key, single-use; `redirect` answers
        with a 302 to the download host (the key must not follow it)."""
        self.proxied[job_id] = (document, redirect)
        return f"{self.api_url}/large_results/{job_id}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.api_seen if s.path == path)

    # -- the two servers -----------------------------------------------------------------------

    def _seen(self, request: BaseHTTPRequestHandler) -> Seen:
        parts = urlsplit(request.path)
        return Seen(request.command, parts.path, parts.query, dict(request.headers.items()))

    def _api(self, request: BaseHTTPRequestHandler) -> Reply:
        seen = self._seen(request)
        with self._lock:
            self.api_seen.append(seen)
        refused = self._check_key(seen)
        if refused:
            return refused
        if seen.path.startswith("/large_results/"):
            return self._proxy(seen.path.rsplit("/", 1)[-1])
        with self._lock:
            script = self.scripts.get(seen.path)
            if not script:
                return Reply(404, {"error": f"no such resource {seen.path}"})
            step = script.pop(0) if len(script) > 1 else script[0]
        reply = step() if callable(step) else step
        return reply if isinstance(reply, Reply) else Reply(200, reply)

    def _check_key(self, seen: Seen) -> Reply | None:
        headers = {k.lower(): v for k, v in seen.headers.items()}
        if seen.path.startswith("/v1/"):
            ok = headers.get("authorization") == f"Bearer {KEY}"
        else:
            ok = headers.get("x-api-key") == PULSE_KEY
        return None if ok else Reply(401, {"error": "Unauthorized: invalid or missing API key"})

    def _proxy(self, job_id: str) -> Reply:
        with self._lock:
            found = self.proxied.pop(job_id, None)  # single-use
        if found is None:
            return Reply(403, {"error": "this result link has expired or was already used"})
        document, redirect = found
        if redirect:
            name = f"proxied-{job_id}.json"
            self.add_file(name, document, "application/json")
            return Reply(302, b"", {"Location": self.link(name)})
        return Reply(200, document, {"Content-Type": "application/json"})

    def _file(self, request: BaseHTTPRequestHandler) -> Reply:
        seen = self._seen(request)
        with self._lock:
            self.files_seen.append(seen)
        lowered = {k.lower() for k in seen.headers}
        if lowered & {"authorization", "x-api-key"}:
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

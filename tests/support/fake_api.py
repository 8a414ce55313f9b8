"""The loopback fake API (resultloader.testing.FakeApi) playing SafetyKit (data requests,
batches) and Pulse, with Pulse's single-use proxy links on the API host.

See `FakeApi` for scripts, links that expire or drop, recorded headers and `leaks`.
"""

from __future__ import annotations

from resultloader.testing import EXPIRED_XML, FakeApi, Reply, Seen

__all__ = ["EXPIRED_XML", "KEY", "PULSE_KEY", "FakeApis", "Reply", "Seen"]

KEY = "sk-test-0123456789abcdef"
PULSE_KEY = "pulse-test-fedcba9876543210"


class FakeApis(FakeApi):
    def __init__(self) -> None:
        super().__init__({"Authorization": f"Bearer {KEY}", "x-api-key": PULSE_KEY})
        self.proxied: dict[str, tuple[bytes, bool]] = {}  # job id -> (document, redirect?)

    def proxy(self, job_id: str, document: bytes, *, redirect: bool = False) -> str:
        """A Pulse proxy URL on the API host: needs x-api-key, single-use; `redirect` answers
        with a 302 to the download host (the key must not follow it)."""
        self.proxied[job_id] = (document, redirect)
        return f"{self.api_url}/large_results/{job_id}"

    def check_key(self, seen: Seen) -> Reply | None:
        headers = {k.lower(): v for k, v in seen.headers.items()}
        if seen.path.startswith("/v1/"):
            ok = headers.get("authorization") == f"Bearer {KEY}"
        else:
            ok = headers.get("x-api-key") == PULSE_KEY
        return None if ok else Reply(401, {"error": "Unauthorized: invalid or missing API key"})

    def answer(self, seen: Seen) -> Reply:
        if seen.path.startswith("/large_results/"):
            return self._proxy(seen.path.rsplit("/", 1)[-1])
        return super().answer(seen)

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

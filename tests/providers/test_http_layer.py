"""One HTTP layer: downloads retry what status calls retry; the API client and the polling
loop share it and do not import each other."""

from __future__ import annotations

from pathlib import Path

import pytest

import resultloader
from resultloader.testing import MemorySink, Reply
from tests.support.provider_apis import (
    DONE,
    OAI_BATCH,
    OAI_ERR,
    OAI_OUT,
    oai_batch,
)

# -- one HTTP layer -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [409, 529])
def test_downloads_retry_what_status_calls_retry(oai, clock, status, monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.Retry.sleep", lambda self, response=None: None)
    oai.script(
        OAI_BATCH, Reply(status, {"error": {"message": "busy"}}), oai_batch("completed", **DONE)
    )
    busy = Reply(status, {"error": {"message": "overloaded"}})
    oai.script("/v1/files/file-out/content", busy, Reply(200, OAI_OUT))
    oai.script("/v1/files/file-err/content", Reply(200, OAI_ERR))
    report = resultloader.ingest("openai-batch", "batch_abc", MemorySink(), poll=clock.policy())
    assert report.rows_read == 3 and oai.hits("/v1/files/file-out/content") == 2
    assert oai.hits(OAI_BATCH) == 2


def _runtime_imports(module: str) -> set[str]:
    """The modules `module` imports when it runs (not those under `if TYPE_CHECKING:`)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            found.add(f"{base}.{node.module}" if node.level else str(node.module))
    return found


def test_the_api_client_and_the_polling_loop_do_not_import_each_other():
    assert "resultloader.providers.poll" not in _runtime_imports("resultloader.providers._client")
    assert "resultloader.providers._client" not in _runtime_imports("resultloader.providers.poll")
    for module in ("resultloader.providers._client", "resultloader.sources.download"):
        assert "resultloader._http" in _runtime_imports(module)  # one retry policy, one session

"""gemini-batch end to end, against a real API on loopback (resultloader.testing.FakeApi) whose
payloads the official SDKs parse as their own.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

from typing import Any

import pytest

import resultloader
from resultloader.testing import FakeApi, MemorySink, Reply
from tests.support.provider_apis import (
    GKEY,
    lines,
)

# -- Gemini Batch --------------------------------------------------------------------------------

GEM_BATCH = "/v1beta/batches/123"
GEM_FILE = "/v1beta/files/out1:download"
GEM_LINES = lines(
    {
        "key": "g1",
        "response": {
            "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}],
            "modelVersion": "gemini-2.5-flash",
        },
    },
    {"key": "g2", "error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}},
)
GEM_REPLY = {"candidates": [{"content": {"parts": [{"text": "Yo"}], "role": "model"}}]}


@pytest.fixture
def gem(monkeypatch):
    fake = FakeApi({"x-goog-api-key": GKEY})
    monkeypatch.setenv("GEMINI_API_KEY", GKEY)
    monkeypatch.setenv("GEMINI_BASE_URL", fake.api_url)
    yield fake
    fake.close()
    assert fake.leaks == []


def gem_batch(state: str, output: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    metadata = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": "models/gemini-2.5-flash",
        "displayName": "nightly",
        "state": f"BATCH_STATE_{state}",
        "createTime": "2026-11-20T10:00:00Z",
    }
    if output is not None:
        metadata["output"] = output
    return {"name": "batches/123", "metadata": metadata, **more}


FILE_OUT = {"responsesFile": "files/out1"}
INLINE_OUT = {
    "inlinedResponses": {
        "inlinedResponses": [
            {"response": GEM_REPLY, "metadata": {"key": "first"}},
            {"response": GEM_REPLY},
            {"error": {"code": 8, "message": "quota"}},
        ]
    }
}


def test_gemini_payloads_parse_in_the_official_sdk(gem):
    from google import genai
    from google.genai import types

    gem.script(GEM_BATCH, gem_batch("SUCCEEDED", FILE_OUT, done=True))
    gem.script(GEM_FILE, Reply(200, GEM_LINES))
    options = types.HttpOptions(base_url=gem.api_url, api_version="v1beta")
    client = genai.Client(api_key=GKEY, http_options=options)
    batch = client.batches.get(name="batches/123")
    assert batch.state == types.JobState.JOB_STATE_SUCCEEDED
    assert batch.dest is not None and batch.dest.file_name == "files/out1"
    assert client.files.download(file="files/out1") == GEM_LINES  # the path we download too
    gem.script(GEM_BATCH, gem_batch("SUCCEEDED", INLINE_OUT, done=True))
    inline = client.batches.get(name="batches/123").dest
    assert inline is not None and inline.inlined_responses is not None
    first = inline.inlined_responses[0]
    assert first.metadata == {"key": "first"} and first.response is not None
    assert first.response.text == "Yo"


def test_gemini_results_file_keyed_by_key(gem, clock):
    gem.script(
        GEM_BATCH, gem_batch("PENDING"), gem_batch("RUNNING"), gem_batch("SUCCEEDED", FILE_OUT)
    )
    gem.script(GEM_FILE, Reply(200, GEM_LINES))
    sink = MemorySink()
    report = resultloader.ingest("gemini-batch", "batches/123", sink, poll=clock.policy())
    assert (report.rows_read, report.status) == (2, "BATCH_STATE_SUCCEEDED")
    assert sink.rows["g1"]["output"]["candidates"][0]["content"]["parts"][0]["text"] == "Hi"
    assert sink.rows["g2"]["output"] is None
    assert sink.rows["g2"]["extra"] == {
        "error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}
    }
    assert len(clock.sleeps) == 2 and all(s >= 5 for s in clock.sleeps)
    assert all(s.headers.get("x-goog-api-key") == GKEY for s in gem.api_seen)


def test_gemini_inline_responses_keyed_by_metadata_key_else_position(gem, clock):
    gem.script(GEM_BATCH, gem_batch("SUCCEEDED", INLINE_OUT))
    sink = MemorySink()
    report = resultloader.ingest("gemini-batch", "123", sink, poll=clock.policy())
    assert report.rows_read == 3 and set(sink.rows) == {"first", "1", "2"}
    assert sink.rows["1"]["output"] == GEM_REPLY
    assert sink.rows["2"]["output"] is None and sink.rows["2"]["extra"]["error"]["code"] == 8


def test_gemini_a_saved_status_in_the_sdks_job_state_words(gem, clock):
    saved = gem_batch("SUCCEEDED", INLINE_OUT)
    saved["metadata"]["state"] = "JOB_STATE_SUCCEEDED"
    location = resultloader.resolve("gemini-batch", saved)
    assert isinstance(location, resultloader.Inline) and len(location.rows) == 3


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        ("FAILED", resultloader.JobFailed, "model not found"),
        ("CANCELLED", resultloader.JobCancelled, "cancelled"),
        ("EXPIRED", resultloader.JobExpired, "expired"),
    ],
)
def test_gemini_terminal_failures(gem, clock, state, error, words):
    gem.script(GEM_BATCH, gem_batch(state, error={"code": 404, "message": "model not found"}))
    with pytest.raises(error, match=words):
        resultloader.ingest("gemini-batch", "batches/123", MemorySink(), poll=clock.policy())


def test_gemini_429_and_a_dropped_download(gem, clock):
    gem.script(
        GEM_BATCH,
        Reply(429, {"error": {"message": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "11"}),
        gem_batch("SUCCEEDED", FILE_OUT),
    )
    gem.script(GEM_FILE, Reply(200, GEM_LINES, drop_after=30), Reply(200, GEM_LINES))
    sink = MemorySink()
    report = resultloader.ingest("gemini-batch", "batches/123", sink, poll=clock.policy())
    assert report.rows_read == 2 and 11 in clock.sleeps and set(sink.rows) == {"g1", "g2"}

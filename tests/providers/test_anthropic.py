"""anthropic-batch end to end, against a real API on loopback (resultloader.testing.FakeApi) whose
payloads the official SDKs parse as their own.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

from typing import Any

import pytest

import resultloader
from resultloader.testing import FakeApi, MemorySink, Reply
from tests.support.provider_apis import (
    AKEY,
    lines,
    no_secret,
)

# -- Anthropic Message Batches -----------------------------------------------------------------

ANT_BATCH = "/v1/messages/batches/msgbatch_01"
ANT_RESULTS = ANT_BATCH + "/results"
ANT_LINES = lines(
    {
        "custom_id": "a1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "Hi"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 2},
            },
        },
    },
    {
        "custom_id": "a2",
        "result": {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "bad"},
            },
        },
    },
    {"custom_id": "a3", "result": {"type": "expired"}},
)


def ant_batch(fake: FakeApi, status: str, url: str | None = "", **counts: int) -> dict[str, Any]:
    tally = {"processing": 0, "succeeded": 1, "errored": 1, "canceled": 0, "expired": 1}
    return {
        "id": "msgbatch_01",
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {**tally, **counts},
        "created_at": "2026-11-20T18:37:24.100435Z",
        "expires_at": "2026-11-21T18:37:24.100435Z",
        "ended_at": "2026-11-20T19:37:24.100435Z" if status == "ended" else None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": (fake.api_url + ANT_RESULTS if url == "" else url)
        if status == "ended"
        else None,
    }


def test_anthropic_payloads_parse_in_the_official_sdk(ant):
    import anthropic

    ant.script(ANT_BATCH, ant_batch(ant, "ended"))
    ant.script(ANT_RESULTS, Reply(200, ANT_LINES, {"Content-Type": "application/binary"}))
    # (this SDK release sends its own newer version header: the documented one is asked for)
    headers = {"x-api-key": AKEY, "anthropic-version": "2023-06-01"}
    client = anthropic.Anthropic(
        api_key=AKEY, base_url=ant.api_url, max_retries=0, default_headers=headers
    )
    batch = client.messages.batches.retrieve("msgbatch_01")
    assert batch.processing_status == "ended" and batch.request_counts.expired == 1
    results = list(client.messages.batches.results("msgbatch_01"))
    assert [(r.custom_id, r.result.type) for r in results] == [
        ("a1", "succeeded"),
        ("a2", "errored"),
        ("a3", "expired"),
    ]


def test_anthropic_batch_loads_results_by_custom_id(ant, clock):
    ant.script(ANT_BATCH, ant_batch(ant, "in_progress"), ant_batch(ant, "ended"))
    ant.script(ANT_RESULTS, Reply(200, ANT_LINES))
    sink = MemorySink()
    report = resultloader.ingest("anthropic-batch", "msgbatch_01", sink, poll=clock.policy())
    assert (report.rows_read, report.status) == (3, "ended")
    assert sink.rows["a1"]["output"]["content"][0]["text"] == "Hi"
    assert sink.rows["a1"]["extra"] == {"result": {"type": "succeeded"}}
    assert sink.rows["a2"]["output"] is None
    assert sink.rows["a2"]["extra"]["result"]["error"]["error"]["message"] == "bad"
    assert sink.rows["a3"]["extra"] == {"result": {"type": "expired"}}
    assert len(clock.sleeps) == 1 and clock.sleeps[0] >= 10
    gets = [s for s in ant.api_seen if s.path == ANT_RESULTS]
    assert gets and all(s.headers.get("anthropic-version") == "2023-06-01" for s in gets)


@pytest.mark.parametrize(
    ("counts", "error"),
    [
        ({"succeeded": 0, "errored": 3, "expired": 0}, resultloader.JobFailed),
        ({"succeeded": 0, "errored": 0, "expired": 3}, resultloader.JobExpired),
        ({"succeeded": 0, "errored": 0, "expired": 0, "canceled": 3}, resultloader.JobCancelled),
    ],
)
def test_anthropic_an_ended_batch_without_success_is_a_failure(ant, clock, counts, error):
    ant.script(ANT_BATCH, ant_batch(ant, "ended", **counts))
    ant.script(ANT_RESULTS, Reply(200, ANT_LINES))
    with pytest.raises(error, match="partial=True loads them"):
        resultloader.ingest("anthropic-batch", "msgbatch_01", MemorySink(), poll=clock.policy())
    sink = MemorySink()
    report = resultloader.ingest(
        "anthropic-batch",
        "msgbatch_01",
        sink,
        options=resultloader.LoadOptions(partial=True),
        poll=clock.policy(),
    )
    assert report.status == "ended (partial)" and len(sink.rows) == 3


def test_anthropic_429_then_an_expired_link_renewed_without_the_key(ant, clock):
    ant.add_file("results.jsonl", ANT_LINES)
    stale, fresh = ant.link("results.jsonl", valid=False), ant.link("results.jsonl")
    ant.script(
        ANT_BATCH,
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "3"}),
        ant_batch(ant, "ended", url=stale),
        ant_batch(ant, "ended", url=fresh),
    )
    sink = MemorySink()
    report = resultloader.ingest("anthropic-batch", "msgbatch_01", sink, poll=clock.policy())
    assert report.rows_read == 3 and 3 in clock.sleeps
    assert len(ant.files_seen) == 2  # the expired link, then the renewed one
    no_secret(ant, repr(report))


def test_anthropic_dropped_download_resumes(ant, clock):
    ant.script(ANT_BATCH, ant_batch(ant, "ended"))
    ant.script(ANT_RESULTS, Reply(200, ANT_LINES, drop_after=100), Reply(200, ANT_LINES))
    sink = MemorySink()
    report = resultloader.ingest("anthropic-batch", "msgbatch_01", sink, poll=clock.policy())
    assert report.rows_read == 3 and set(sink.rows) == {"a1", "a2", "a3"}

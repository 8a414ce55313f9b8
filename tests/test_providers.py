"""openai-batch, anthropic-batch, gemini-batch and shopify-bulk end to end, against a real API on
loopback (resultloader.testing.FakeApi) whose payloads the official SDKs parse as their own.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import FakeApi, FakeClock, MemorySink, Reply
from tests.support.provider_apis import (
    AKEY,
    BIG,
    DONE,
    GKEY,
    NOW,
    OAI_BATCH,
    OAI_ERR,
    OAI_OUT,
    OKEY,
    SKEY,
    ledger,
    lines,
    no_secret,
    oai_batch,
    oai_files,
)


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


def serve(monkeypatch, auth: dict[str, str], env: dict[str, str], base: str = ""):
    fake = FakeApi(auth)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return fake


# -- OpenAI Batch ------------------------------------------------------------------------------


def test_openai_payloads_parse_in_the_official_sdk(oai):
    import openai

    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai_files(oai)
    client = openai.OpenAI(api_key=OKEY, base_url=oai.api_url + "/v1", max_retries=0)
    batch = client.batches.retrieve("batch_abc")
    assert (batch.status, batch.output_file_id, batch.error_file_id) == (
        "completed",
        "file-out",
        "file-err",
    )
    assert batch.request_counts is not None and batch.request_counts.total == 3
    assert client.files.content("file-out").content == OAI_OUT


def test_openai_batch_loads_output_and_error_files_by_custom_id(oai, clock):
    oai.script(
        OAI_BATCH, oai_batch("validating"), oai_batch("in_progress"), oai_batch("completed", **DONE)
    )
    oai_files(oai)
    sink = MemorySink()
    report = resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    assert (report.rows_read, report.status) == (3, "completed")  # = request_counts.total
    assert sink.rows["r1"]["output"] == {"n": BIG, "ok": True}  # exact
    assert sink.rows["r2"]["output"] is None  # a 400 answer is no output, but kept whole
    assert sink.rows["r2"]["extra"] == {
        "id": "batch_req_2",
        "response": {"status_code": 400, "request_id": "req_2", "body": {"error": "bad"}},
    }
    assert sink.rows["r3"]["output"] is None
    assert sink.rows["r3"]["extra"]["error"]["code"] == "batch_expired"
    # OpenAI's guidance: no need to poll a 24 h batch more than every 10 s
    assert len(clock.sleeps) == 2 and all(s >= 10 for s in clock.sleeps)
    file_gets = [s for s in oai.api_seen if "/files/" in s.path]
    assert all(s.headers.get("Authorization") == f"Bearer {OKEY}" for s in file_gets)


def test_openai_rows_in_duckdb_match_memory(oai, clock, tmp_path):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai_files(oai)
    db = tmp_path / "r.duckdb"
    resultloader.ingest("openai-batch", "batch_abc", db, poll=clock.policy())
    con = duckdb.connect(str(db), read_only=True)
    found = dict(con.execute("SELECT id, output FROM results").fetchall())
    extra = con.execute("SELECT extra FROM results WHERE id = 'r2'").fetchone()[0]
    con.close()
    assert set(found) == {"r1", "r2", "r3"} and found["r2"] is None
    assert str(BIG) in found["r1"]
    assert json.loads(extra)["response"]["status_code"] == 400


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        ("failed", resultloader.JobFailed, "input file is invalid"),
        ("expired", resultloader.JobExpired, "completion window"),
        ("cancelled", resultloader.JobCancelled, "no results"),
    ],
)
def test_openai_terminal_failures(oai, clock, status, error, words):
    errors = {"object": "list", "data": [{"code": "invalid", "message": "input file is invalid"}]}
    oai.script(OAI_BATCH, oai_batch(status, errors=errors if status == "failed" else None))
    sink = MemorySink()
    with pytest.raises(error, match=words):
        resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    assert sink.rows == {}


def test_openai_partial_results_need_partial(oai, clock, tmp_path):
    oai.script(OAI_BATCH, oai_batch("expired", output_file_id="file-out"))
    oai_files(oai)
    db = tmp_path / "r.duckdb"
    with pytest.raises(resultloader.JobExpired, match="partial=True loads them"):
        resultloader.ingest("openai-batch", "batch_abc", db, poll=clock.policy())
    assert not db.exists() or ledger(db) == []
    report = resultloader.ingest(
        "openai-batch",
        "batch_abc",
        db,
        options=resultloader.LoadOptions(partial=True),
        poll=clock.policy(),
    )
    assert (report.rows_read, report.status) == (2, "expired (partial)")
    assert ledger(db) == [("committed", "expired (partial)", 2)]


def test_openai_429_is_waited_out_as_retry_after_says(oai, clock):
    oai.script(
        OAI_BATCH,
        Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "7"}),
        oai_batch("completed", **DONE),
    )
    oai_files(oai)
    report = resultloader.ingest("openai-batch", "batch_abc", MemorySink(), poll=clock.policy())
    assert report.rows_read == 3 and 7 in clock.sleeps


def test_openai_dropped_download_resumes(oai, clock):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai.script(
        "/v1/files/file-out/content", Reply(200, OAI_OUT, drop_after=40), Reply(200, OAI_OUT)
    )
    oai.script("/v1/files/file-err/content", Reply(200, OAI_ERR))
    sink = MemorySink()
    report = resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    assert report.rows_read == 3 and set(sink.rows) == {"r1", "r2", "r3"}
    assert oai.hits("/v1/files/file-out/content") >= 2  # the drop was seen, and mended


def test_openai_cli_keeps_the_key_out_of_every_output(oai, tmp_path):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai_files(oai)
    db = tmp_path / "r.duckdb"
    args = ["ingest", "openai-batch", "--batch-id", "batch_abc", "--into", str(db), "--json"]
    result = CliRunner().invoke(main, [*args, "--poll-interval", "0.001"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_read"] == 3
    con = duckdb.connect(str(db), read_only=True)
    dump = repr(con.execute("SELECT * FROM _resultloader_loads").fetchall())
    dump += repr(con.execute("SELECT * FROM results").fetchall())
    con.close()
    no_secret(oai, result.output, dump)


def test_openai_key_flag_is_refused(oai, clock):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai_files(oai)
    with pytest.raises(resultloader.ResultLoaderError, match="custom_id"):
        resultloader.ingest(
            "openai-batch",
            "batch_abc",
            MemorySink(),
            options=resultloader.LoadOptions(key="other"),
            poll=clock.policy(),
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


# -- Shopify bulk operations ---------------------------------------------------------------------

SHOP_GQL = "/admin/api/2026-01/graphql.json"
OP = "gid://shopify/BulkOperation/720918"
SHOP_LINES = lines(
    {"id": "gid://shopify/Product/1", "title": "Shirt", "price": "19.99"},
    {
        "id": "gid://shopify/ProductVariant/11",
        "sku": "S-1",
        "__parentId": "gid://shopify/Product/1",
    },
    {"id": "gid://shopify/Product/2", "title": "Hat", "stock": BIG},
)


@pytest.fixture
def shop(monkeypatch):
    fake = FakeApi({"X-Shopify-Access-Token": SKEY})
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SKEY)
    yield fake
    fake.close()
    assert fake.leaks == []


def bulk(status: str, field: str = "bulkOperation", **more: Any) -> dict[str, Any]:
    node = {
        "id": OP,
        "status": status,
        "errorCode": None,
        "objectCount": "3",
        "rootObjectCount": "2",
        "fileSize": "300",
        "url": None,
        "partialDataUrl": None,
        **more,
    }
    return {"data": {field: node}, "extensions": {"cost": {"requestedQueryCost": 1}}}


def shop_ingest(fake: FakeApi, clock: FakeClock, sink: Any, op: str = OP, **kw: Any):
    job = resultloader.Job(op, params={"shop": "demo.myshopify.com"})
    return resultloader.ingest(
        "shopify-bulk",
        job,
        sink,
        poll=clock.policy(),
        api=resultloader.ApiAccess(base_url=fake.api_url),
        **kw,
    )


def test_shopify_bulk_operation_keyed_by_id_with_parent_in_extra(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES, "application/jsonl")
    shop.script(
        SHOP_GQL, bulk("CREATED"), bulk("RUNNING"), bulk("COMPLETED", url=shop.link("bulk.jsonl"))
    )
    sink = MemorySink()
    report = shop_ingest(shop, clock, sink)
    assert (report.rows_read, report.status) == (3, "COMPLETED")
    assert sink.rows["gid://shopify/Product/1"]["output"] == {"title": "Shirt", "price": "19.99"}
    variant = sink.rows["gid://shopify/ProductVariant/11"]
    assert variant["output"] == {"sku": "S-1"}
    assert variant["extra"] == {"__parentId": "gid://shopify/Product/1"}
    assert sink.rows["gid://shopify/Product/2"]["output"]["stock"] == BIG
    query = json.loads(shop.api_seen[0].body)
    assert query["variables"] == {"id": OP} and "bulkOperation(id: $id)" in query["query"]
    assert shop.api_seen[0].method == "POST" and len(clock.sleeps) == 2


def test_shopify_default_is_the_current_query_operation(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    shop.script(SHOP_GQL, bulk("COMPLETED", "currentBulkOperation", url=shop.link("bulk.jsonl")))
    report = shop_ingest(shop, clock, MemorySink(), op="")
    assert report.rows_read == 3
    assert "currentBulkOperation(type: QUERY)" in json.loads(shop.api_seen[0].body)["query"]


def test_shopify_an_operation_that_matched_nothing_loads_nothing(shop, clock):
    shop.script(SHOP_GQL, bulk("COMPLETED", objectCount="0"))
    assert shop_ingest(shop, clock, MemorySink()).rows_read == 0


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        ("FAILED", resultloader.JobFailed, "ACCESS_DENIED"),
        ("CANCELED", resultloader.JobCancelled, "no results"),
        ("EXPIRED", resultloader.JobExpired, "expired"),
    ],
)
def test_shopify_terminal_failures(shop, clock, status, error, words):
    shop.script(SHOP_GQL, bulk(status, errorCode="ACCESS_DENIED"))
    with pytest.raises(error, match=words):
        shop_ingest(shop, clock, MemorySink())


def test_shopify_expired_link_is_renewed_and_429_waited_out(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    stale, fresh = shop.link("bulk.jsonl", valid=False), shop.link("bulk.jsonl")
    shop.script(
        SHOP_GQL,
        Reply(429, {"errors": "Throttled"}, {"Retry-After": "2"}),
        bulk("COMPLETED", url=stale),
        bulk("COMPLETED", url=fresh),
    )
    report = shop_ingest(shop, clock, MemorySink())
    assert report.rows_read == 3 and 2 in clock.sleeps and len(shop.files_seen) == 2


def test_shopify_dropped_download_whose_link_then_expired(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    first, fresh = shop.link("bulk.jsonl", expire_after=50), shop.link("bulk.jsonl")
    shop.script(SHOP_GQL, bulk("COMPLETED", url=first), bulk("COMPLETED", url=fresh))
    sink = MemorySink()
    assert shop_ingest(shop, clock, sink).rows_read == 3 and len(sink.rows) == 3


def shop_cli(fake: FakeApi, db, *more: str):
    args = ["ingest", "shopify-bulk", "--shop", "demo.myshopify.com", "--operation-id", OP]
    args += ["--base-url", fake.api_url, "--into", str(db), "--poll-interval", "0.001", *more]
    return CliRunner().invoke(main, args, env={"SHOPIFY_ACCESS_TOKEN": SKEY})


def test_shopify_partial_data_only_with_partial(shop, tmp_path):
    shop.add_file("partial.jsonl", SHOP_LINES)
    url = shop.link("partial.jsonl")
    shop.script(SHOP_GQL, bulk("FAILED", errorCode="TIMEOUT", partialDataUrl=url))
    db = tmp_path / "r.duckdb"
    refused = shop_cli(shop, db, "-q")
    assert refused.exit_code == 1
    assert refused.stderr.strip().count("\n") == 0 and "--partial" in refused.stderr
    assert "TIMEOUT" in refused.stderr
    assert not db.exists() or ledger(db) == []
    loaded = shop_cli(shop, db, "--partial", "--json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["status"] == "FAILED (partial)"
    assert ledger(db) == [("committed", "FAILED (partial)", 3)]
    no_secret(shop, refused.output, loaded.output)


def test_shopify_needs_a_shop(shop, tmp_path):
    args = ["ingest", "shopify-bulk", "--into", str(tmp_path / "r.duckdb")]
    result = CliRunner().invoke(main, args, env={"SHOPIFY_ACCESS_TOKEN": SKEY})
    assert result.exit_code == 1 and "--shop NAME.myshopify.com" in result.output


# -- a third-party provider, installed through an entry point --------------------------------

ACME = '''
from typing import ClassVar

from resultloader.providers import Download, Provider, RowMapping, register


@register
class Acme(Provider):
    """Acme's answer jobs."""

    name: ClassVar[str] = "acme-jobs"
    title: ClassVar[str] = "An Acme job: its rows, keyed by ref."
    base_url: ClassVar[str] = "https://api.acme.test"
    key_env: ClassVar[str] = "ACME_API_KEY"
    base_url_env: ClassVar[str] = "ACME_BASE_URL"
    auth_header: ClassVar[str] = "X-Acme-Key"
    status_field: ClassVar[str] = "state"
    states: ClassVar[dict] = {"working": "running", "done": "succeeded", "broken": "failed"}

    def job_path(self, job):
        return f"/jobs/{job.id}"

    def locate(self, payload, what, job_id, items_path):
        mapping = RowMapping(key="ref", output="answer", keep=("score",))
        return Download(f"/jobs/{job_id}/rows", format="jsonl", mapping=mapping)
'''


@pytest.fixture
def plugin(tmp_path):
    """A package with an entry point in `resultloader.providers`, importable from a dir on
    PYTHONPATH: importlib.metadata sees its dist-info as it would an installed wheel's."""
    site = tmp_path / "site"
    (site / "rl_acme").mkdir(parents=True)
    (site / "rl_acme" / "__init__.py").write_text(ACME)
    info = site / "rl_acme-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rl-acme\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resultloader.providers]\nacme-jobs = rl_acme:Acme\n")
    return site


def run_cli(site, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = "from resultloader.cli import main; main()"
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ, timeout=60
    )


def test_a_third_party_provider_shows_in_help_and_works(plugin, tmp_path):
    listed = run_cli(plugin, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" in listed.stdout
    assert "An Acme job: its rows, keyed by ref." in listed.stdout
    own = run_cli(plugin, "ingest", "acme-jobs", "--help")
    assert "$ACME_API_KEY" in own.stdout and "Acme's answer jobs." in own.stdout
    with FakeApi({"X-Acme-Key": "acme-secret"}) as fake:
        fake.script("/jobs/j1", {"state": "working"}, {"state": "done"})
        fake.script("/jobs/j1/rows", Reply(200, lines({"ref": "x", "answer": 42, "score": 0.5})))
        db = tmp_path / "r.duckdb"
        args = ["ingest", "acme-jobs", "--job-id", "j1", "--into", str(db), "--json"]
        done = run_cli(
            plugin,
            *args,
            "--poll-interval",
            "0.01",
            ACME_API_KEY="acme-secret",
            ACME_BASE_URL=fake.api_url,
        )
        assert done.returncode == 0, done.stderr
        assert fake.leaks == [] and "acme-secret" not in done.stdout + done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT id, output, extra FROM results").fetchall() == [
        ("x", "42", '{"score":0.5}')
    ]
    con.close()


def test_without_the_plugin_the_command_is_unknown(tmp_path):
    result = run_cli(tmp_path, "ingest", "acme-jobs", "--help")
    assert (result.returncode, result.stdout) == (2, "")  # a usage error, no help shown
    listed = run_cli(tmp_path, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" not in listed.stdout


# -- mapped rows share the load path --------------------------------------------------------------


def test_a_refused_error_file_is_renewed_as_the_error_file(oai, clock):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai.script("/v1/files/file-out/content", Reply(200, OAI_OUT))
    refused = Reply(403, {"error": {"message": "link expired"}})
    oai.script("/v1/files/file-err/content", refused, Reply(200, OAI_ERR))
    sink = MemorySink()
    report = resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    assert report.rows_read == 3 and set(sink.rows) == {"r1", "r2", "r3"}


MESSY = OAI_OUT + (
    b'{"id": "batch_req_9", "custom_id": "r1", "response": {"status_code": 200, '
    b'"request_id": "req_9", "body": {"n": 2}}}\n'
    b"{not json\n"
    b'{"id": "batch_req_8", "response": null}\n'
)


@pytest.mark.parametrize("target", ["memory", "duckdb"])
def test_mapped_rows_follow_last_wins_and_on_error_on_every_sink(oai, clock, tmp_path, target):
    oai.script(OAI_BATCH, oai_batch("completed", output_file_id="file-out"))
    oai.script("/v1/files/file-out/content", Reply(200, MESSY))
    sink: Any = MemorySink() if target == "memory" else tmp_path / "r.duckdb"
    with pytest.raises(resultloader.ParseError, match=r"line 4.*invalid JSON"):
        resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    report = resultloader.ingest(
        "openai-batch",
        "batch_abc",
        sink,
        options=resultloader.LoadOptions(on_error="quarantine"),
        poll=clock.policy(),
    )
    assert (report.rows_read, report.bad_rows) == (3, 2)
    if target == "memory":
        outputs = {k: v["output"] for k, v in sink.rows.items()}
        reasons = [r.reason for r in sink.rejects]
    else:
        con = duckdb.connect(str(sink), read_only=True)
        outputs = {
            k: v and json.loads(v)
            for k, v in con.execute("SELECT id, output FROM results").fetchall()
        }
        reasons = [
            r[0] for r in con.execute("SELECT reason FROM results_rejects ORDER BY line").fetchall()
        ]
        con.close()
    assert outputs == {"r1": {"n": 2}, "r2": None}  # the last r1 wins
    assert reasons[1] == "no 'custom_id' field" and reasons[0].startswith("invalid JSON")


def test_a_broken_plugin_is_named_and_the_others_still_work(plugin):
    info = plugin / "rl_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rl-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resultloader.providers]\nbroken = rl_missing:X\n")
    listed = run_cli(plugin, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" in listed.stdout
    assert "Installed but not loaded" in listed.stdout and "rl_missing" in listed.stdout


@pytest.mark.parametrize("route", ["jsonl", "array", "items"])
@pytest.mark.parametrize("target", ["memory", "duckdb"])
def test_a_mapping_reads_the_same_on_every_route(tmp_path, route, target):
    from resultloader.providers import RowMapping, When

    mapping = RowMapping(
        "custom_id", "response.body", When("response.status_code", between=(200, 299)), ("id",)
    )
    items = [json.loads(line) for line in OAI_OUT.splitlines()]
    body = {
        "jsonl": OAI_OUT,
        "array": json.dumps(items).encode(),
        "items": json.dumps({"data": items}).encode(),
    }[route]
    path = tmp_path / ("r.jsonl" if route == "jsonl" else "r.json")
    path.write_bytes(body)
    options = resultloader.LoadOptions(mapping=mapping)
    if target == "memory":
        sink = MemorySink()
        resultloader.load(path, sink, options)
        found = {k: (v["output"], v["extra"]) for k, v in sink.rows.items()}
    else:
        db = tmp_path / "r.duckdb"
        resultloader.load(path, db, options)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("SELECT id, output, extra FROM results").fetchall()
        con.close()
        found = {k: (o and json.loads(o), json.loads(e)) for k, o, e in rows}
    assert found["r2"] == (None, {"id": "batch_req_2"})
    assert found["r1"][0] == {"n": BIG, "ok": True} and found["r1"][1] == {"id": "batch_req_1"}


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

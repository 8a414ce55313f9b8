"""openai-batch end to end, against a real API on loopback (resultloader.testing.FakeApi) whose
payloads the official SDKs parse as their own.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import MemorySink, Reply
from tests.support.provider_apis import (
    BIG,
    DONE,
    OAI_BATCH,
    OAI_ERR,
    OAI_OUT,
    OKEY,
    ledger,
    no_secret,
    oai_batch,
    oai_files,
)

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

"""The OpenAI-shaped batch APIs end to end, against a real API on loopback
(resultloader.testing.FakeApi) whose payloads the official SDKs parse as their own:
azure-openai-batch (`openai.AzureOpenAI`), mistral-batch (`mistralai`), and Groq's and
Together's batches through openai-batch with --base-url.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import FakeApi, FakeClock, MemorySink, Reply
from tests.support.typed_rows import typed_rows

AZKEY, AZTOKEN, MKEY, GROQKEY = (
    "az-0123456789abcdef",
    "eyJ0eXAi.fake.tok",
    "mis-0123456789",
    "gsk_0123",
)
SECRETS = (AZKEY, AZTOKEN, MKEY, GROQKEY)
BIG = 123456789012345678901234567890


def lines(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def no_secret(fake: FakeApi, *texts: str) -> None:
    assert fake.leaks == []
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.fixture
def clock():
    return FakeClock()


# OpenAI's batch object and lines, as Azure, Groq and Together send them too

OUT = lines(
    {
        "id": "batch_req_1",
        "custom_id": "r1",
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {
                "model": "gpt-4o-mini",
                "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
                "n": BIG,
            },
        },
        "error": None,
    },
    {
        "id": "batch_req_2",
        "custom_id": "r2",
        "response": {
            "status_code": 400,
            "request_id": "req_2",
            "body": {"error": {"type": "invalid_request_error", "message": "bad"}},
        },
        "error": None,
    },
)
ERR = lines(
    {
        "id": "batch_req_3",
        "custom_id": "r3",
        "response": None,
        "error": {"code": "batch_expired", "message": "not run in time"},
    }
)
DONE = {"output_file_id": "file-out", "error_file_id": "file-err"}


def batch(status: str, **fields: Any) -> dict[str, Any]:
    found = {
        "id": "batch_abc",
        "object": "batch",
        "endpoint": "/chat/completions",
        "errors": None,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1714508499,
        "request_counts": {"total": 3, "completed": 1, "failed": 2},
        "metadata": None,
    }
    return {**found, **fields}


# -- Azure OpenAI Batch ------------------------------------------------------------------------

AZ_BATCH, AZ_OUT, AZ_ERR = (
    "/openai/batches/batch_abc",
    "/openai/files/file-out/content",
    "/openai/files/file-err/content",
)


@pytest.fixture
def azure(monkeypatch):
    fake = FakeApi({"api-key": AZKEY})
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZKEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.api_url)
    monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)
    yield fake
    fake.close()
    assert fake.leaks == []


def azure_files(fake: FakeApi, prefix: str = "/openai") -> None:
    fake.script(f"{prefix}/files/file-out/content", Reply(200, OUT))
    fake.script(f"{prefix}/files/file-err/content", Reply(200, ERR))


def test_azure_payloads_parse_in_the_official_sdk(azure):
    import openai

    azure.script(AZ_BATCH, batch("completed", **DONE))
    azure_files(azure)
    client = openai.AzureOpenAI(
        api_key=AZKEY, azure_endpoint=azure.api_url, api_version="2024-10-21", max_retries=0
    )
    found = client.batches.retrieve("batch_abc")
    assert (found.status, found.output_file_id) == ("completed", "file-out")
    assert client.files.content("file-out").content == OUT
    # the paths and the query the SDK asked for are those the provider asks for
    assert {(s.path, s.query) for s in azure.api_seen} == {
        (AZ_BATCH, "api-version=2024-10-21"),
        (AZ_OUT, "api-version=2024-10-21"),
    }


def test_azure_batch_loads_output_and_error_files_with_the_api_key(azure, clock, tmp_path):
    azure.script(AZ_BATCH, batch("validating"), batch("in_progress"), batch("completed", **DONE))
    azure_files(azure)
    sink = MemorySink()
    report = resultloader.ingest("azure-openai-batch", "batch_abc", sink, poll=clock.policy())
    assert (report.rows_read, report.status) == (3, "completed")
    assert sink.rows["r1"]["output"]["n"] == BIG
    assert sink.rows["r2"]["output"] is None
    assert sink.rows["r2"]["extra"]["response"]["body"]["error"]["message"] == "bad"
    assert sink.rows["r3"]["extra"]["error"]["code"] == "batch_expired"
    assert {s.path for s in azure.api_seen} == {AZ_BATCH, AZ_OUT, AZ_ERR}
    assert all(s.query == "api-version=2024-10-21" for s in azure.api_seen)
    assert all(s.headers.get("api-key") == AZKEY for s in azure.api_seen)
    assert not any("Authorization" in s.headers for s in azure.api_seen)
    assert len(clock.sleeps) == 2 and all(s >= 10 for s in clock.sleeps)
    resultloader.ingest("azure-openai-batch", "batch_abc", tmp_path / "r.duckdb")
    columns = typed_rows(tmp_path / "r.duckdb", "azure-openai-batch")  # OpenAI's
    assert columns["r1"]["text"] == "Hi" and columns["r1"]["total_tokens"] == 10
    assert columns["r2"]["error_message"] == "bad" and columns["r3"]["status"] == "expired"


def test_azure_entra_id_token_is_sent_as_a_bearer_token(azure, clock, monkeypatch):
    import openai

    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", AZTOKEN)
    azure.auth = {"Authorization": f"Bearer {AZTOKEN}"}
    azure.script(AZ_BATCH, batch("completed", **DONE))
    azure_files(azure)
    client = openai.AzureOpenAI(
        azure_ad_token=AZTOKEN, azure_endpoint=azure.api_url, api_version="2024-10-21"
    )
    assert client.batches.retrieve("batch_abc").status == "completed"
    report = resultloader.ingest(
        "azure-openai-batch", "batch_abc", MemorySink(), poll=clock.policy()
    )
    assert report.rows_read == 3
    assert not any("api-key" in s.headers for s in azure.api_seen)
    no_secret(azure, repr(report), str(report.to_dict()))


def test_azure_v1_api_has_no_api_version(azure, clock):
    azure.script("/openai/v1/batches/batch_abc", batch("completed", **DONE))
    azure_files(azure, "/openai/v1")
    job = resultloader.Job("batch_abc", params={"api_version": "v1"})
    report = resultloader.ingest("azure-openai-batch", job, MemorySink(), poll=clock.policy())
    assert report.rows_read == 3 and all(s.query == "" for s in azure.api_seen)


@pytest.mark.parametrize(
    ("status", "error"),
    [("expired", resultloader.JobExpired), ("cancelled", resultloader.JobCancelled)],
)
def test_azure_a_batch_that_ended_early_loads_its_work_with_partial(azure, clock, status, error):
    azure.script(AZ_BATCH, batch(status, output_file_id="file-out"))
    azure_files(azure)
    with pytest.raises(error, match="partial=True loads them"):
        resultloader.ingest("azure-openai-batch", "batch_abc", MemorySink(), poll=clock.policy())
    options = resultloader.LoadOptions(partial=True)
    report = resultloader.ingest(
        "azure-openai-batch", "batch_abc", MemorySink(), options, poll=clock.policy()
    )
    assert (report.rows_read, report.status) == (2, f"{status} (partial)")


def test_azure_cli_needs_an_endpoint_and_keeps_the_key_out(azure, tmp_path, monkeypatch):
    azure.script(AZ_BATCH, batch("failed", errors={"data": [{"message": "bad input file"}]}))
    db = tmp_path / "r.duckdb"
    args = ["ingest", "azure-openai-batch", "--batch-id", "batch_abc", "--into", str(db)]
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1 and "bad input file" in failed.output
    bad = CliRunner().invoke(main, [*args, "--api-version", "latest"])
    assert bad.exit_code == 1 and "--api-version is YYYY-MM-DD" in bad.output
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 1 and "AZURE_OPENAI_ENDPOINT" in missing.output
    assert azure.hits(AZ_BATCH) == 1  # only the first run asked
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    nokey = CliRunner().invoke(main, [*args, "--base-url", azure.api_url])
    assert nokey.exit_code == 1
    assert "set AZURE_OPENAI_API_KEY or AZURE_OPENAI_AD_TOKEN" in nokey.output
    helped = CliRunner().invoke(main, ["ingest", "azure-openai-batch", "--help"])
    assert "$AZURE_OPENAI_AD_TOKEN" in helped.output and "--api-version" in helped.output
    no_secret(azure, failed.output, bad.output, missing.output, nokey.output)


def test_azure_wrong_key_is_named_and_not_shown(azure, clock, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-wrong-key-0000")
    azure.script(AZ_BATCH, batch("completed", **DONE))
    with pytest.raises(resultloader.PollError, match="check AZURE_OPENAI_API_KEY") as refused:
        resultloader.ingest("azure-openai-batch", "batch_abc", MemorySink(), poll=clock.policy())
    assert "az-wrong-key-0000" not in str(refused.value)


# -- Mistral batch jobs --------------------------------------------------------------------------

M_ID = "0b8c3e0e-5d2f-4c1e-9d0a-1f2e3d4c5b6a"
M_JOB, M_OUT, M_ERR = (
    f"/v1/batch/jobs/{M_ID}",
    "/v1/files/f-out/content",
    "/v1/files/f-err/content",
)
M_LINES = lines(
    {
        "id": "batch-1",
        "custom_id": "m1",
        "response": {
            "status_code": 200,
            "body": {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": "mistral-small-latest",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Brie"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
            },
        },
        "error": None,
    },
    {
        "id": "batch-2",
        "custom_id": "m2",
        "response": {
            "status_code": 200,
            "body": {
                "model": "magistral-small-latest",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": [
                                {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                                {"type": "text", "text": "Comté"},
                            ],
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 8, "completion_tokens": 30, "total_tokens": 38},
            },
        },
        "error": None,
    },
)
M_ERRORS = lines(
    {
        "id": "batch-3",
        "custom_id": "m3",
        "response": {
            "status_code": 400,
            "body": {"object": "error", "message": "Prompt too long", "type": "invalid_request"},
        },
        "error": None,
    }
)


@pytest.fixture
def mis(monkeypatch):
    fake = FakeApi({"Authorization": f"Bearer {MKEY}"})
    monkeypatch.setenv("MISTRAL_API_KEY", MKEY)
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.api_url)
    yield fake
    fake.close()
    assert fake.leaks == []


def mistral_job(status: str, **fields: Any) -> dict[str, Any]:
    found = {
        "id": M_ID,
        "object": "batch",
        "input_files": ["f-in"],
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "errors": [],
        "status": status,
        "created_at": 1714508499,
        "total_requests": 3,
        "completed_requests": 3,
        "succeeded_requests": 2,
        "failed_requests": 1,
        "output_file": None,
        "error_file": None,
        "metadata": {"job_type": "testing"},
    }
    return {**found, **fields}


M_DONE = {"output_file": "f-out", "error_file": "f-err"}


def mistral_files(fake: FakeApi) -> None:
    fake.script(M_OUT, Reply(200, M_LINES, {"Content-Type": "application/octet-stream"}))
    fake.script(M_ERR, Reply(200, M_ERRORS, {"Content-Type": "application/octet-stream"}))


def test_mistral_payloads_parse_in_the_official_sdk(mis):
    from mistralai.client import Mistral

    mis.script(M_JOB, mistral_job("SUCCESS", **M_DONE))
    mistral_files(mis)
    with Mistral(api_key=MKEY, server_url=mis.api_url) as client:
        found = client.batch.jobs.get(job_id=M_ID)
        assert (found.status, found.output_file, found.error_file) == ("SUCCESS", "f-out", "f-err")
        assert found.succeeded_requests == 2
        assert client.files.download(file_id="f-out").read() == M_LINES
    # the SDK's own examples read each output line's response.body
    assert [json.loads(x)["response"]["body"]["model"] for x in M_LINES.splitlines()] == [
        "mistral-small-latest",
        "magistral-small-latest",
    ]


def test_mistral_job_loads_output_and_error_files_by_custom_id(mis, clock, tmp_path):
    mis.script(
        M_JOB, mistral_job("QUEUED"), mistral_job("RUNNING"), mistral_job("SUCCESS", **M_DONE)
    )
    mistral_files(mis)
    sink = MemorySink()
    report = resultloader.ingest("mistral-batch", M_ID, sink, poll=clock.policy())
    assert (report.rows_read, report.status) == (3, "SUCCESS")
    assert sink.rows["m1"]["output"]["choices"][0]["message"]["content"] == "Brie"
    assert sink.rows["m3"]["output"] is None
    assert sink.rows["m3"]["extra"]["response"]["status_code"] == 400
    assert len(clock.sleeps) == 2 and all(s >= 10 for s in clock.sleeps)
    assert all(s.headers.get("Authorization") == f"Bearer {MKEY}" for s in mis.api_seen)
    report = resultloader.ingest("mistral-batch", M_ID, tmp_path / "r.duckdb")
    assert report.statuses == {"succeeded": 2, "errored": 1} and report.tokens == 48
    columns = typed_rows(tmp_path / "r.duckdb", "mistral-batch")
    assert columns["m1"] == {
        "status": "succeeded",
        "model": "mistral-small-latest",
        "text": "Brie",
        "finish_reason": "stop",
        "input_tokens": 8,
        "output_tokens": 2,
        "total_tokens": 10,
        "error_type": None,
        "error_message": None,
    }
    assert columns["m2"]["text"] == "Comté"  # the answer's text chunks, not its thinking
    assert (columns["m3"]["status"], columns["m3"]["error_type"]) == ("errored", "invalid_request")
    assert columns["m3"]["error_message"] == "Prompt too long"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("TIMEOUT_EXCEEDED", resultloader.JobExpired),
        ("CANCELLED", resultloader.JobCancelled),
        ("FAILED", resultloader.JobFailed),
    ],
)
def test_mistral_a_job_that_ended_early_loads_its_output_with_partial(mis, clock, status, error):
    errors = [{"message": "worker lost", "count": 1}]
    mis.script(M_JOB, mistral_job(status, output_file="f-out", errors=errors))
    mistral_files(mis)
    with pytest.raises(error, match="partial=True loads them"):
        resultloader.ingest("mistral-batch", M_ID, MemorySink(), poll=clock.policy())
    options = resultloader.LoadOptions(partial=True)
    report = resultloader.ingest("mistral-batch", M_ID, MemorySink(), options, poll=clock.policy())
    assert (report.rows_read, report.status) == (2, f"{status} (partial)")


def test_mistral_a_failed_job_without_results_says_why(mis, clock):
    errors = [{"message": "Invalid input file: line 3", "count": 1}]
    mis.script(M_JOB, mistral_job("FAILED", errors=errors))
    with pytest.raises(resultloader.JobFailed, match="Invalid input file: line 3") as failed:
        resultloader.ingest("mistral-batch", M_ID, MemorySink(), poll=clock.policy())
    assert "partial" not in str(failed.value)


def test_mistral_cli_loads_a_job_and_keeps_the_key_out(mis, tmp_path):
    import duckdb

    mis.script(M_JOB, mistral_job("RUNNING"), mistral_job("SUCCESS", **M_DONE))
    mistral_files(mis)
    db = tmp_path / "r.duckdb"
    args = ["ingest", "mistral-batch", "--job-id", M_ID, "--into", str(db), "--json"]
    result = CliRunner().invoke(main, [*args, "--poll-interval", "0.001"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_read"] == 3
    con = duckdb.connect(str(db), read_only=True)
    dump = repr(con.execute("SELECT * FROM _resultloader_loads").fetchall())
    dump += repr(con.execute("SELECT * FROM results").fetchall())
    con.close()
    assert f"mistral-batch:{M_ID}" in dump
    no_secret(mis, result.output, dump)


# -- Groq and Together: openai-batch with --base-url ---------------------------------------------


@pytest.fixture
def compatible(monkeypatch):
    fake = FakeApi({"Authorization": f"Bearer {GROQKEY}"})
    monkeypatch.setenv("OPENAI_API_KEY", GROQKEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield fake
    fake.close()
    assert fake.leaks == []


def test_groq_batches_load_through_openai_batch(compatible, tmp_path):
    """Groq's batch object and files are OpenAI's, under https://api.groq.com/openai/v1."""
    import openai

    base = compatible.api_url + "/openai/v1"
    groq = batch("completed", id="batch_01jh6xa7reempvjyh6n3yst2zw", **DONE)
    compatible.script(
        "/openai/v1/batches/batch_01jh6xa7reempvjyh6n3yst2zw",
        batch("in_progress", id=groq["id"]),
        groq,
    )
    compatible.script("/openai/v1/files/file-out/content", Reply(200, OUT))
    compatible.script("/openai/v1/files/file-err/content", Reply(200, ERR))
    client = openai.OpenAI(api_key=GROQKEY, base_url=base, max_retries=0)
    assert client.batches.retrieve(groq["id"]).status == "in_progress"  # the script's first
    assert client.files.content("file-out").content == OUT
    db = tmp_path / "r.duckdb"
    args = ["ingest", "openai-batch", "--batch-id", groq["id"], "--base-url", base]
    result = CliRunner().invoke(
        main, [*args, "--into", str(db), "--json", "--poll-interval", "0.001"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_read"] == 3
    no_secret(compatible, result.output)


def test_together_batches_load_through_openai_batch(compatible, clock):
    """Together's batch has upper-case statuses, a UUID id and no request_counts."""
    job_id = "01234567-8901-2345-6789-012345678901"

    def together(status: str, **more: Any) -> dict[str, Any]:
        return {
            "id": job_id,
            "user_id": "user_789xyz012",
            "input_file_id": "file-in",
            "file_size_bytes": 1048576,
            "status": status,
            "job_deadline": "2026-01-15T15:30:00Z",
            "created_at": "2026-01-15T14:30:00Z",
            "endpoint": "/v1/chat/completions",
            "progress": 100 if status == "COMPLETED" else 40,
            "model_id": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "error": None,
            **more,
        }

    compatible.script(
        f"/v1/batches/{job_id}",
        together("VALIDATING"),
        together("IN_PROGRESS"),
        together("COMPLETED", output_file_id="file-out", error_file_id="file-err"),
    )
    compatible.script("/v1/files/file-out/content", Reply(200, OUT))
    compatible.script("/v1/files/file-err/content", Reply(200, ERR))
    sink = MemorySink()
    api = resultloader.ApiAccess(base_url=compatible.api_url + "/v1")
    report = resultloader.ingest("openai-batch", job_id, sink, poll=clock.policy(), api=api)
    assert (report.rows_read, report.status) == (3, "COMPLETED")
    assert set(sink.rows) == {"r1", "r2", "r3"}
    compatible.script(f"/v1/batches/{job_id}", together("FAILED", error="input file invalid"))
    with pytest.raises(resultloader.JobFailed, match="input file invalid"):
        resultloader.ingest("openai-batch", job_id, MemorySink(), poll=clock.policy(), api=api)


def test_azure_api_key_does_not_follow_a_redirect_to_another_host(azure, clock):
    azure.add_file("out.jsonl", OUT)
    azure.script(AZ_BATCH, batch("completed", output_file_id="file-out"))
    azure.script(AZ_OUT, Reply(302, b"", {"Location": azure.link("out.jsonl")}))
    report = resultloader.ingest(
        "azure-openai-batch", "batch_abc", MemorySink(), poll=clock.policy()
    )
    assert report.rows_read == 2 and len(azure.files_seen) == 1
    assert azure.leaks == []  # (the fixture checks it too: api-key by name or by value)

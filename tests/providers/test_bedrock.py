"""bedrock-batch end to end: a fake Bedrock control plane on loopback (tests/support/fake_aws.py)
that boto3 signs its calls to, and the job's output on moto's S3 server, from Python and the CLI.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import FakeClock, MemorySink
from tests.support import fake_aws
from tests.support.fake_aws import (
    ACCESS_KEY,
    ARN,
    JOB_ID,
    SECRET_KEY,
    TOKEN,
    FakeBedrock,
    error,
    job,
)
from tests.support.typed_rows import typed_rows

BIG = 123456789012345678901234567890


def lines(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


PROMPT = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": ["..." * 50]}
CLAUDE = lines(
    {
        "recordId": "c1",
        "modelInput": PROMPT,
        "modelOutput": {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-haiku-20240307",
            "content": [{"type": "text", "text": "Approve"}, {"type": "text", "text": "d."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 6},
            "n": BIG,
        },
    },
    {
        "recordId": "c2",
        "modelInput": PROMPT,
        "error": {"errorCode": 400, "errorMessage": "Malformed input request"},
    },
)
OTHERS = lines(
    {
        "recordId": "l1",
        "modelInput": {"prompt": "Hi"},
        "modelOutput": {
            "generation": "Hello there",
            "prompt_token_count": 5,
            "generation_token_count": 3,
            "stop_reason": "stop",
        },
    },
    {
        "recordId": "n1",
        "modelInput": {"messages": []},
        "modelOutput": {
            "output": {"message": {"role": "assistant", "content": [{"text": "Nova says hi"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 7, "outputTokens": 4, "totalTokens": 11},
        },
    },
)
MANIFEST = {
    "totalRecordCount": 4,
    "processedRecordCount": 4,
    "successRecordCount": 3,
    "errorRecordCount": 1,
    "inputTokenCount": 24,
    "outputTokenCount": 13,
}
COUNTS = {"totalRecordCount": 4, "processedRecordCount": 4, "successRecordCount": 3}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def aws(monkeypatch, s3_endpoint, tmp_path):
    """Fake credentials and both endpoints in the environment, nothing of the machine's."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_REGION",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake = FakeBedrock()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.api_url)
    yield fake
    fake.close()


@pytest.fixture
def bucket(aws, s3_endpoint):
    """A fresh bucket holding the job's output, another job's, and its input."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"bedrock-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    out = f"out/{JOB_ID}"
    for key, body in (
        (f"{out}/claims.jsonl.out", CLAIMS := CLAUDE),
        (f"{out}/more/others.jsonl.out", OTHERS),
        (f"{out}/manifest.json.out", json.dumps(MANIFEST).encode()),
        ("out/zzz999zzz999/claims.jsonl.out", lines({"recordId": "other-job", "modelOutput": 1})),
        ("in/claims.jsonl", lines({"recordId": "c1", "modelInput": PROMPT})),
    ):
        s3.put_object(Bucket=name, Key=key, Body=body)
    assert CLAIMS
    return name


def ingest(sink: Any, clock: FakeClock, **kw: Any) -> resultloader.LoadReport:
    return resultloader.ingest("bedrock-batch", ARN, sink, poll=clock.policy(), **kw)


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SECRET_KEY, TOKEN):
            assert secret not in text


def test_a_completed_job_loads_every_output_file_as_one_load(aws, bucket, clock):
    aws.job(
        job("Submitted", bucket),
        job("InProgress", bucket, totalRecordCount=4, processedRecordCount=1),
        job("Completed", bucket, **COUNTS),
    )
    sink, seen = MemorySink(), []
    report = ingest(sink, clock, on_status=seen.append)
    assert (report.rows_read, report.status) == (4, "Completed")
    assert set(sink.rows) == {"c1", "c2", "l1", "n1"}  # not the other job's, not the input
    claude = sink.rows["c1"]
    assert claude["output"]["content"][0]["text"] == "Approve"
    assert claude["output"]["n"] == BIG  # exact
    assert claude["extra"] in (None, {})  # the request (modelInput) is not kept
    assert "modelInput" not in json.dumps(sink.rows["c2"])
    assert sink.rows["c2"]["output"] is None
    assert sink.rows["c2"]["extra"] == {
        "error": {"errorCode": 400, "errorMessage": "Malformed input request"}
    }
    # the manifest's counts (tokens included) show once the job has ended
    assert seen[-1].counts == {
        "total": 4,
        "processed": 4,
        "succeeded": 3,
        "errored": 1,
        "input_tokens": 24,
        "output_tokens": 13,
    }
    assert seen[1].counts == {"total": 4, "processed": 1}
    # hours-long jobs: polled every 30 s or more; signed for the ARN's region (the fake checks)
    assert len(clock.sleeps) == 2 and all(s >= 30 for s in clock.sleeps)
    assert aws.hits(fake_aws.PATH) == 3


def test_typed_columns_read_claude_llama_and_nova_bodies(aws, bucket, clock, tmp_path):
    aws.job(job("Completed", bucket, **COUNTS))
    report = ingest(tmp_path / "r.duckdb", clock)
    assert report.statuses == {"succeeded": 3, "errored": 1} and report.tokens == 37
    found = typed_rows(tmp_path / "r.duckdb", "bedrock-batch")
    assert found["c1"] == {
        "status": "succeeded",
        "model": "claude-3-haiku-20240307",
        "text": "Approved.",
        "finish_reason": "end_turn",
        "input_tokens": 12,
        "output_tokens": 6,
        "total_tokens": 18,
        "error_type": None,
        "error_message": None,
    }
    llama, nova = found["l1"], found["n1"]
    assert (llama["text"], llama["finish_reason"], llama["total_tokens"]) == (
        "Hello there",
        "stop",
        8,
    )
    assert (llama["input_tokens"], llama["output_tokens"]) == (5, 3)
    assert (nova["text"], nova["finish_reason"], nova["total_tokens"]) == (
        "Nova says hi",
        "end_turn",
        11,
    )
    assert (nova["input_tokens"], nova["output_tokens"]) == (7, 4)
    assert found["c2"] == {
        "status": "errored",
        "model": None,
        "text": None,
        "finish_reason": None,
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
        "error_type": "400",
        "error_message": "Malformed input request",
    }


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        ("PartiallyCompleted", resultloader.JobExpired, "timeout ran out"),
        ("Stopped", resultloader.JobCancelled, "cancelled"),
        ("Expired", resultloader.JobExpired, "timeout ran out"),
    ],
)
def test_jobs_that_ended_early_load_what_they_wrote_with_partial(
    aws, bucket, clock, tmp_path, status, error_type, words
):
    aws.job(job(status, bucket, totalRecordCount=9, processedRecordCount=4))
    db = tmp_path / "r.duckdb"
    with pytest.raises(error_type, match=rf"{words}.*partial=True loads them") as refused:
        ingest(db, clock)
    assert status in str(refused.value)
    assert not db.exists() or _ledger(db) == []
    report = ingest(db, clock, options=resultloader.LoadOptions(partial=True))
    assert (report.rows_read, report.status) == (4, f"{status} (partial)")
    assert _ledger(db) == [("committed", f"{status} (partial)", 4)]


@pytest.fixture
def empty_bucket(aws, s3_endpoint):
    import boto3

    name = f"empty-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def test_a_job_that_processed_nothing_has_nothing_to_load(aws, empty_bucket, clock):
    aws.job(job("Expired", empty_bucket, totalRecordCount=9, processedRecordCount=0))
    for partial in (False, True):
        with pytest.raises(resultloader.JobExpired) as refused:
            ingest(MemorySink(), clock, options=resultloader.LoadOptions(partial=partial))
        assert "partial" not in str(refused.value)


def test_a_failed_job_says_why_and_loads_nothing(aws, bucket, clock):
    message = "The role lacks s3:GetObject on the input bucket"
    aws.job(job("Failed", bucket, message=message))
    for partial in (False, True):
        sink = MemorySink()
        with pytest.raises(resultloader.JobFailed, match="lacks s3:GetObject") as failed:
            ingest(sink, clock, options=resultloader.LoadOptions(partial=partial))
        assert "partial" not in str(failed.value) and sink.rows == {}


def test_a_completed_job_without_output_files_is_an_error_naming_the_job(aws, empty_bucket, clock):
    aws.job(job("Completed", empty_bucket))
    sink = MemorySink()
    with pytest.raises(resultloader.DownloadError, match=rf"{JOB_ID}.*no object matches"):
        ingest(sink, clock)
    assert sink.rows == {}


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (error(404, "ResourceNotFoundException", "no such job"), "not found"),
        (error(403, "AccessDeniedException", "not allowed"), "may not read it"),
        (error(400, "ValidationException", "bad identifier"), "ValidationException"),
    ],
)
def test_refusals_are_said_in_our_words(aws, bucket, clock, reply, words):
    aws.job(reply)
    with pytest.raises(resultloader.PollError, match=words) as refused:
        ingest(MemorySink(), clock)
    assert ARN in str(refused.value)
    no_secret(str(refused.value), repr(refused.value))


def test_wrong_or_missing_credentials(aws, bucket, clock, monkeypatch):
    aws.job(job("Completed", bucket))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHEROTHEROTHER1")
    with pytest.raises(resultloader.PollError, match="AWS refused the credentials") as refused:
        ingest(MemorySink(), clock)
    no_secret(str(refused.value))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(resultloader.PollError, match="no AWS credentials found: set AWS_PROFILE"):
        ingest(MemorySink(), clock)
    assert aws.hits(fake_aws.PATH) == 1  # nothing unsigned was sent


def test_an_id_that_is_no_job_arn_is_refused_before_any_request(aws, tmp_path):
    with pytest.raises(ValueError, match="not a batch inference job's ARN"):
        resultloader.ingest("bedrock-batch", "arn:aws:s3:::some-bucket", MemorySink())
    args = ["ingest", "bedrock-batch", "--job-arn", "../../etc", "--into", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "not a batch inference job's ARN" in result.output
    assert aws.api_seen == []


def test_a_bare_job_id_is_polled_in_the_default_region(aws, bucket, clock, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")  # what the fake checks the signature for
    aws.script(f"/model-invocation-job/{JOB_ID}", job("Completed", bucket, **COUNTS))
    report = resultloader.ingest("bedrock-batch", JOB_ID, MemorySink(), poll=clock.policy())
    assert report.rows_read == 4


def test_the_cli_loads_a_job_and_shows_no_secret(aws, bucket, tmp_path):
    aws.job(job("InProgress", bucket, totalRecordCount=4), job("Completed", bucket, **COUNTS))
    db = tmp_path / "r.duckdb"
    args = ["ingest", "bedrock-batch", "--job-arn", ARN, "--into", str(db)]
    result = CliRunner().invoke(main, [*args, "--poll-interval", "0.001"])
    assert result.exit_code == 0, result.output
    assert "3/4 done" in result.stderr and "24 input_tokens" in result.stderr
    assert "4 rows read" in result.output
    con = duckdb.connect(str(db), read_only=True)
    dump = repr(con.execute("SELECT * FROM _resultloader_loads").fetchall())
    dump += repr(con.execute("SELECT * FROM results").fetchall())
    con.close()
    assert f"bedrock-batch:{ARN}" in dump
    no_secret(result.output, dump)


def test_the_cli_refuses_a_stopped_job_then_loads_it_with_partial(aws, bucket, tmp_path):
    aws.job(job("Stopped", bucket, totalRecordCount=9, processedRecordCount=4))
    db = tmp_path / "r.duckdb"
    args = ["ingest", "bedrock-batch", "--job-arn", ARN, "--into", str(db)]
    refused = CliRunner().invoke(main, [*args, "-q"])
    assert refused.exit_code == 1
    assert refused.stderr.strip().count("\n") == 0 and "--partial" in refused.stderr
    loaded = CliRunner().invoke(main, [*args, "--partial", "--json"])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["status"] == "Stopped (partial)"
    no_secret(refused.output, loaded.output)


def test_help_says_where_credentials_come_from(aws):
    result = CliRunner().invoke(main, ["ingest", "bedrock-batch", "--help"])
    assert result.exit_code == 0
    assert "--job-arn" in result.output and "AWS_PROFILE" in result.output


def _ledger(db) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT status, job_status, rows_read FROM _resultloader_loads"
        ).fetchall()
    finally:
        con.close()


def test_an_ids_file_of_arns_loads_each_job_on_its_own(aws, bucket, s3_endpoint, tmp_path):
    import boto3

    second = ARN.replace(JOB_ID, "fed654cba321")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    body = lines({"recordId": "s1", "modelInput": {}, "modelOutput": {"generation": "ok"}})
    s3.put_object(Bucket=bucket, Key="out/fed654cba321/x.jsonl.out", Body=body)
    aws.job(job("Completed", bucket, **COUNTS))
    aws.script(
        fake_aws.PATH.replace(JOB_ID, "fed654cba321"), job("Completed", bucket, jobArn=second)
    )
    listed = tmp_path / "jobs.txt"
    listed.write_text(f"{ARN}\n{second}\n")
    db = tmp_path / "r.duckdb"
    args = ["ingest", "bedrock-batch", "--ids-file", str(listed), "--into", str(db), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((d["job"], d["outcome"]) for d in found) == [(ARN, "loaded"), (second, "loaded")]
    assert sorted(r[0] for r in _ledger(db)) == ["committed", "committed"]
    again = CliRunner().invoke(main, args)
    assert {json.loads(line)["outcome"] for line in again.stdout.splitlines()} == {"skipped"}


def test_a_saved_status_loads_without_asking_bedrock(aws, bucket, tmp_path):
    """`aws bedrock get-model-invocation-job ... > status.json`: the job is the one it names."""
    saved = tmp_path / "status.json"
    saved.write_text(json.dumps(job("Completed", bucket, **COUNTS)))
    db = tmp_path / "r.duckdb"
    args = ["ingest", "bedrock-batch", "--status-file", str(saved), "--into", str(db), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows_read"], report["job_id"]) == (4, ARN)
    assert aws.api_seen == []

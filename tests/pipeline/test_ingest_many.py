"""Many jobs: `ingest PROVIDER --ids-file` / `--since` and `resultloader.ingest_many`, against
the fake API on loopback (real HTTP, real time: the shared 429 backoff is timed by the server)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.providers import get_provider, provider_names
from resultloader.testing import FakeApi, MemorySink, Reply
from tests.support.duckdb_files import query
from tests.support.fake_api import KEY, FakeApis
from tests.support.provider_apis import AKEY, OKEY, batch, output, serve_batch

FAST = ["--poll-interval", "0.01"]


def ingest(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["ingest", *args, *FAST], input=stdin)


def json_lines(stdout: str) -> dict[str, dict[str, Any]]:
    found = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {d["job"]: d for d in found}


def ids(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def no_key(*texts: str) -> None:
    for text in texts:
        assert OKEY not in text and AKEY not in text and KEY not in text


# -- many jobs, one shared backoff ------------------------------------------------------------


def test_many_jobs_each_load_their_own_transaction(oai, tmp_path):
    for n in range(5):
        serve_batch(oai, n, batch(n, "in_progress"), batch(n, "finalizing"), batch(n))
    db = tmp_path / "r.duckdb"
    poll = resultloader.PollPolicy(interval=0.01, max_interval=0.02)
    results = resultloader.ingest_many(
        "openai-batch",
        [f"batch_{n}" for n in range(5)],
        db,
        poll=dataclasses.replace(poll, concurrency=3),
    )
    outcomes = sorted((r.job, r.outcome) for r in results)
    assert outcomes == [(f"batch_{n}", "loaded") for n in range(5)]
    assert all(r.report is not None and r.report.rows_read == 2 for r in results)
    assert query(db, "SELECT count(*) FROM results") == [(10,)]
    ledger = query(db, "SELECT job_id, status FROM _resultloader_loads ORDER BY job_id")
    assert ledger == [(f"batch_{n}", "committed") for n in range(5)]  # one load per job


def test_a_429_holds_every_poller_until_retry_after(oai, tmp_path):
    running = [batch(0, "in_progress")] * 40
    limited = Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"})
    serve_batch(oai, 0, running[0], limited, *running, batch(0))
    for n in range(1, 6):
        serve_batch(oai, n, *running, batch(n))
    poll = resultloader.PollPolicy(interval=0.01, max_interval=0.02)
    results = resultloader.ingest_many(
        "openai-batch", [f"batch_{n}" for n in range(6)], tmp_path / "r.duckdb", poll=poll
    )
    assert [r.outcome for r in results] == ["loaded"] * 6
    polls = [s for s in oai.api_seen if s.path.startswith("/v1/batches/")]
    hit = [s for s in polls if s.path == "/v1/batches/batch_0"][1].at  # the 429's arrival
    # the answer takes a moment to reach the client: a poll already sent may still arrive just
    # after; from then on, nobody polls until the second the API asked for is over
    held = [s.path for s in polls if hit + 0.25 < s.at < hit + 0.95]
    assert held == []
    after = [s for s in polls if s.at >= hit + 0.95]
    assert {s.path for s in after} == {f"/v1/batches/batch_{n}" for n in range(6)}


# -- a failing job among good ones, and the re-run -------------------------------------------


def test_a_failed_job_is_named_and_the_others_load(oai, tmp_path):
    for n in (1, 3):
        serve_batch(oai, n, batch(n, "in_progress"), batch(n))
    serve_batch(oai, 2, batch(2, "failed"))
    db = str(tmp_path / "r.duckdb")
    listed = ids(tmp_path, "batch_1", "batch_2", "batch_3")
    result = ingest("openai-batch", "--ids-file", listed, "--into", db, "--json")
    assert result.exit_code == 1
    found = json_lines(result.stdout)
    assert {k: v["outcome"] for k, v in found.items()} == {
        "batch_1": "loaded",
        "batch_2": "failed",
        "batch_3": "loaded",
    }
    assert found["batch_1"]["rows_read"] == 2 and found["batch_1"]["status"] == "completed"
    assert "batch 2 input is invalid" in found["batch_2"]["error"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert errors == [f"failed: {found['batch_2']['error']}"]
    assert found["batch_2"]["error"].startswith("openai-batch batch batch_2 failed")
    assert "3 jobs: 0 waiting, 0 running, 2 loaded, 0 skipped, 1 failed" in result.stderr
    assert "Traceback" not in result.output
    assert query(db, "SELECT count(*) FROM results") == [(4,)]
    no_key(result.output)

    # the re-run: what was committed is skipped (not polled, not downloaded); the rest loads
    serve_batch(oai, 2, batch(2))
    again = ingest("openai-batch", "--ids-file", listed, "--into", db, "--json")
    assert again.exit_code == 0, again.output
    assert {k: v["outcome"] for k, v in json_lines(again.stdout).items()} == {
        "batch_1": "skipped",
        "batch_2": "loaded",
        "batch_3": "skipped",
    }
    for n in (1, 3):
        assert oai.hits(f"/v1/files/file-out-{n}/content") == 1
        assert oai.hits(f"/v1/batches/batch_{n}") == 2  # the first run's two polls only
    assert query(db, "SELECT count(*) FROM results") == [(6,)]


def test_ids_from_stdin_with_comments_and_blank_lines(oai, tmp_path):
    for n in (1, 2):
        serve_batch(oai, n)
    db = str(tmp_path / "r.duckdb")
    text = "# yesterday's batches\nbatch_1\n\n  batch_2  # the big one\n"
    result = ingest("openai-batch", "--ids-file", "-", "--into", db, stdin=text)
    assert result.exit_code == 0, result.output
    assert "2 jobs: 0 waiting, 0 running, 2 loaded" in result.stderr
    assert query(db, "SELECT count(*) FROM results") == [(4,)]


def test_wrong_key_fails_every_job_in_one_line_each_without_the_key(oai, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0123456789")
    for n in (1, 2):
        serve_batch(oai, n)
    result = ingest(
        "openai-batch", "--ids-file", ids(tmp_path, "batch_1", "batch_2"),
        "--into", str(tmp_path / "r.duckdb"),
    )  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(errors) == 2 and all("OPENAI_API_KEY" in line for line in errors)
    assert "sk-wrong-0123456789" not in result.output


# -- SafetyKit: NAMESPACE/REQUEST_ID, or --namespace -----------------------------------------


@pytest.fixture
def sk(monkeypatch):
    apis = FakeApis()
    monkeypatch.setenv("SAFETYKIT_API_KEY", KEY)
    monkeypatch.setenv("SAFETYKIT_BASE_URL", apis.api_url)
    yield apis
    apis.close()
    assert apis.leaks == []


def sk_request(fake: FakeApi, namespace: str, request: str) -> None:
    rows = [{"id": f"{namespace}-{request}", "output": {"ok": True}}]
    payload = {"status": "succeeded", "request_id": request, "namespace": namespace, "data": rows}
    fake.script(f"/v1/data/{namespace}/requests/{request}", payload)


def test_safetykit_lines_name_their_namespace(sk, tmp_path):
    sk_request(sk, "shop", "req_a")
    sk_request(sk, "ads", "req_b")
    db = str(tmp_path / "r.duckdb")
    listed = ids(tmp_path, "shop/req_a", "ads/req_b")
    result = ingest("safetykit", "--ids-file", listed, "--into", db, "--json")
    assert result.exit_code == 0, result.output
    assert set(json_lines(result.stdout)) == {"shop/req_a", "ads/req_b"}
    assert query(db, "SELECT id FROM results ORDER BY id") == [("ads-req_b",), ("shop-req_a",)]
    sources = query(db, "SELECT source FROM _resultloader_loads ORDER BY source")
    assert sources == [("safetykit:ads/req_b",), ("safetykit:shop/req_a",)]
    no_key(result.output)


def test_safetykit_namespace_for_every_line(sk, tmp_path):
    sk_request(sk, "shop", "req_a")
    sk_request(sk, "shop", "req_c")
    db = str(tmp_path / "r.duckdb")
    listed = ids(tmp_path, "req_a", "req_c")
    result = ingest("safetykit", "--ids-file", listed, "--namespace", "shop", "--into", db)
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT id FROM results ORDER BY id") == [("shop-req_a",), ("shop-req_c",)]


def test_python_namespace_for_all_and_one_id_given_as_text(sk):
    sk_request(sk, "shop", "req_a")
    sink = MemorySink()
    (result,) = resultloader.ingest_many("safetykit", resultloader.Job("req_a", "shop"), sink)
    assert (result.job, result.outcome) == ("shop/req_a", "loaded")
    assert set(sink.rows) == {"shop-req_a"}
    # a sink without a ledger to read skips nothing: the job is loaded again, unchanged
    (again,) = resultloader.ingest_many("safetykit", ["shop/req_a"], sink)
    assert again.outcome == "loaded" and sk.hits("/v1/data/shop/requests/req_a") == 2


def test_ingest_and_ingest_many_take_an_open_connection(sk):
    sk_request(sk, "shop", "req_a")
    sk_request(sk, "shop", "req_b")
    con = duckdb.connect()
    con.execute("SET threads = 3")
    report = resultloader.ingest("safetykit", "shop/req_a", con)
    assert report.rows_upserted == 1
    results = resultloader.ingest_many("safetykit", ["shop/req_a", "shop/req_b"], con)
    assert sorted((r.job, r.outcome) for r in results) == [
        ("shop/req_a", "skipped"),  # the connection's ledger says it is loaded
        ("shop/req_b", "loaded"),
    ]
    assert con.execute("SELECT id FROM results ORDER BY id").fetchall() == [
        ("shop-req_a",),
        ("shop-req_b",),
    ]
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(3,)]


def test_safetykit_line_without_namespace_is_named_before_anything_is_polled(sk, tmp_path):
    listed = ids(tmp_path, "shop/req_a", "# then", "req_b")
    result = ingest("safetykit", "--ids-file", listed, "--into", str(tmp_path / "r.duckdb"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {listed}, line 3: safetykit: 'req_b': give NAMESPACE/REQUEST_ID, "
        "or --namespace for every line"
    ]
    assert sk.api_seen == []


# -- --since: reconciling from the provider's listing ------------------------------------------

DAY = 86400
T0 = 1764547200  # 2025-12-01T00:00:00Z


def test_since_loads_the_ended_jobs_the_ledger_lacks_openai(oai, tmp_path):
    page1 = [batch(5, created=T0 + 5 * DAY), batch(4, "in_progress", T0 + 4 * DAY)]
    page1 += [batch(3, created=T0 + 3 * DAY)]
    page2 = [batch(2, created=T0 + 2 * DAY), batch(1, created=T0 - DAY)]
    for n in range(1, 6):
        serve_batch(oai, n, batch(n))
    oai.script(
        "/v1/batches",
        {"object": "list", "data": page1, "has_more": True, "last_id": "batch_3"},
        {"object": "list", "data": page2, "has_more": True, "last_id": "batch_1"},
    )
    db = str(tmp_path / "r.duckdb")
    first = ingest("openai-batch", "--batch-id", "batch_3", "--into", db)
    assert first.exit_code == 0, first.output

    result = ingest("openai-batch", "--since", "2025-12-01", "--into", db, "--json")
    assert result.exit_code == 0, result.output
    outcomes = {k: v["outcome"] for k, v in json_lines(result.stdout).items()}
    assert outcomes == {"batch_5": "loaded", "batch_3": "skipped", "batch_2": "loaded"}
    listings = [s.query for s in oai.api_seen if s.path == "/v1/batches"]
    assert listings == ["limit=100", "limit=100&after=batch_3"]  # batch_1 is older: no page 3
    assert oai.hits("/v1/batches/batch_5") == 0  # the listing's payload is the status
    assert oai.hits("/v1/files/file-out-4/content") == oai.hits("/v1/files/file-out-1/content") == 0
    assert "left out: 1 still running" in result.stderr
    no_key(result.output)


def ant_batch(fake: FakeApi, n: int, created: str, status: str = "ended") -> dict[str, Any]:
    results = f"/v1/messages/batches/msgbatch_{n}/results"
    line = {"custom_id": f"a{n}", "result": {"type": "succeeded", "message": {"n": n}}}
    fake.script(results, Reply(200, json.dumps(line).encode() + b"\n"))
    ended = status == "ended"
    return {
        "id": f"msgbatch_{n}",
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {"processing": 0 if ended else 1, "succeeded": 1 if ended else 0},
        "created_at": created,
        "results_url": fake.api_url + results if ended else None,
    }


def test_since_loads_the_ended_jobs_the_ledger_lacks_anthropic(ant, tmp_path):
    page1 = [ant_batch(ant, 4, "2025-12-04T10:00:00.123456Z")]
    page1 += [ant_batch(ant, 3, "2025-12-03T10:00:00Z", "in_progress")]
    page2 = [ant_batch(ant, 2, "2025-12-01T09:00:00Z"), ant_batch(ant, 1, "2025-11-30T10:00:00Z")]
    ant.script(
        "/v1/messages/batches",
        {"data": page1, "has_more": True, "first_id": "msgbatch_4", "last_id": "msgbatch_3"},
        {"data": page2, "has_more": False, "first_id": "msgbatch_2", "last_id": "msgbatch_1"},
    )
    db = str(tmp_path / "r.duckdb")
    result = ingest("anthropic-batch", "--since", "2025-12-01T08:00:00Z", "--into", db, "--json")
    assert result.exit_code == 0, result.output
    outcomes = {k: v["outcome"] for k, v in json_lines(result.stdout).items()}
    assert outcomes == {"msgbatch_4": "loaded", "msgbatch_2": "loaded"}
    listings = [s.query for s in ant.api_seen if s.path == "/v1/messages/batches"]
    assert listings == ["limit=1000", "limit=1000&after_id=msgbatch_3"]
    assert query(db, "SELECT id FROM results ORDER BY id") == [("a2",), ("a4",)]
    no_key(result.output)

    ant.script("/v1/messages/batches", {"data": page1 + page2, "has_more": False})
    again = ingest("anthropic-batch", "--since", "2025-12-01", "--into", db, "--json")
    outcomes = {k: v["outcome"] for k, v in json_lines(again.stdout).items()}
    assert again.exit_code == 0 and outcomes == {"msgbatch_4": "skipped", "msgbatch_2": "skipped"}


def test_since_is_refused_by_a_provider_that_cannot_list(sk, tmp_path):
    result = ingest("safetykit", "--since", "2025-12-01", "--into", str(tmp_path / "r.duckdb"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: safetykit cannot list its requests, so --since cannot")
    assert "anthropic-batch" in line and "openai-batch" in line
    assert sk.api_seen == []
    with pytest.raises(ValueError, match="safetykit: cannot list"):
        resultloader.ingest_many("safetykit", since=datetime(2025, 12, 1, tzinfo=timezone.utc))


# -- every provider, through the seam ----------------------------------------------------------


def _script_every(fake: FakeApi, name: str) -> list[str]:
    """Two finished jobs of provider `name` on the fake API; the ids file's lines."""
    fake.add_file("d.csv", "id,decision\nd1,approve\n", "text/csv")
    fake.add_file("bulk.jsonl", b'{"id": "gid://shopify/Product/1", "title": "Hat"}\n')
    gem = {"inlinedResponses": {"inlinedResponses": [{"response": {"n": 1}}]}}
    ended = {
        "safetykit": lambda n: {"status": "succeeded", "data": [{"id": f"r{n}"}]},
        "safetykit-batch": lambda n: {
            "batch_status": "SUCCESS", "download_url": fake.link("d.csv")},
        "pulse": lambda n: {"job_id": f"job_{n}", "status": "completed", "result": {"n": n}},
        "openai-batch": batch,
        "azure-openai-batch": batch,
        "mistral-batch": lambda n: {"id": f"m{n}", "status": "SUCCESS",
            "output_file": f"file-out-{n}"},
        "anthropic-batch": lambda n: ant_batch(fake, n, "2025-12-01T00:00:00Z"),
        "gemini-batch": lambda n: {"name": f"batches/{n}", "metadata": {
            "state": "BATCH_STATE_SUCCEEDED", "output": gem}},
        "shopify-bulk": lambda n: {"data": {"bulkOperation": {
            "id": f"gid://shopify/BulkOperation/{n}", "status": "COMPLETED",
            "url": fake.link("bulk.jsonl")}}},
    }[name]  # fmt: skip
    paths = {
        "safetykit": ("/v1/data/ns/requests/req_{n}", "ns/req_{n}"),
        "safetykit-batch": ("/v1/batches/b{n}", "b{n}"),
        "pulse": ("/job/job_{n}", "job_{n}"),
        "openai-batch": ("/v1/batches/batch_{n}", "batch_{n}"),
        "azure-openai-batch": ("/openai/batches/batch_{n}", "batch_{n}"),
        "mistral-batch": ("/v1/batch/jobs/m{n}", "m{n}"),
        "anthropic-batch": ("/v1/messages/batches/msgbatch_{n}", "msgbatch_{n}"),
        "gemini-batch": ("/v1beta/batches/{n}", "batches/{n}"),
        "shopify-bulk": ("/admin/api/2026-01/graphql.json", "gid://shopify/BulkOperation/{n}"),
    }[name]
    for n in (1, 2):
        fake.script(paths[0].format(n=n), lambda n=n: ended(n))  # type: ignore[misc]
        files = {"openai-batch": "/v1/files", "azure-openai-batch": "/openai/files"}
        files["mistral-batch"] = "/v1/files"
        if name in files:
            fake.script(f"{files[name]}/file-out-{n}/content", Reply(200, output(n)))
    return [paths[1].format(n=n) for n in (1, 2)]


BUILT_IN = (
    "safetykit", "safetykit-batch", "pulse", "openai-batch", "azure-openai-batch",
    "anthropic-batch", "gemini-batch", "mistral-batch", "shopify-bulk",
)  # fmt: skip


def test_the_list_of_providers_is_complete():
    # (bedrock-batch's ids file needs S3: tests/providers/test_bedrock.py)
    found = {get_provider(name).name for name in provider_names()}
    assert found == {*BUILT_IN, "bedrock-batch"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_provider_takes_an_ids_file(name, tmp_path, monkeypatch):
    prov = get_provider(name)
    fake = FakeApi()  # no key checked: every provider's own header is tested elsewhere
    base = fake.api_url + ("/v1" if name == "openai-batch" else "")
    monkeypatch.setenv(prov.key_env, "k-0123456789")
    db = str(tmp_path / "r.duckdb")
    try:
        listed = ids(tmp_path, *_script_every(fake, name))
        extra = ["--shop", "demo.myshopify.com"] if name == "shopify-bulk" else []
        result = ingest(
            name, "--ids-file", listed, "--base-url", base, "--into", db, "--json", *extra
        )
    finally:
        fake.close()
    assert result.exit_code == 0, result.output
    found = json_lines(result.stdout)
    assert sorted(found) == sorted(Path(listed).read_text().split())
    assert all(d["outcome"] == "loaded" for d in found.values())
    assert query(db, "SELECT count(*) FROM _resultloader_loads WHERE status = 'committed'") == [
        (2,)
    ]


def test_progress_counts_and_one_job_polled_at_a_time(oai, tmp_path):
    for n in range(4):
        serve_batch(oai, n, batch(n, "in_progress"), batch(n, "in_progress"), batch(n))
    serve_batch(oai, 4, batch(4, "failed"))
    seen: list[tuple[int, ...]] = []

    def record(t: resultloader.JobTally) -> None:
        seen.append((t.waiting, t.running, t.loaded, t.skipped, t.failed))

    poll = resultloader.PollPolicy(interval=0.01, max_interval=0.02)
    jobs = [f"batch_{n}" for n in range(5)]
    db = tmp_path / "r.duckdb"
    resultloader.ingest_many(
        "openai-batch", jobs, db, poll=dataclasses.replace(poll, concurrency=1), on_progress=record
    )
    assert seen[0] == (5, 0, 0, 0, 0) and seen[-1] == (0, 0, 4, 0, 1)
    assert all(sum(counts) == 5 for counts in seen)
    polled = [s.path for s in oai.api_seen if s.path.startswith("/v1/batches/")]
    blocks = [p for i, p in enumerate(polled) if i == 0 or polled[i - 1] != p]
    assert blocks == [f"/v1/batches/batch_{n}" for n in range(5)]  # never two at once

    seen.clear()
    resultloader.ingest_many("openai-batch", jobs, db, poll=poll, on_progress=record)
    assert seen[-1] == (0, 0, 0, 4, 1)  # the four loaded are skipped; the failed one fails again


def test_no_wait_loads_the_ended_jobs_and_exits_3_for_the_others(oai, tmp_path):
    serve_batch(oai, 1)
    serve_batch(oai, 2, batch(2, "in_progress"))
    db = str(tmp_path / "r.duckdb")
    listed = ids(tmp_path, "batch_1", "batch_2")
    result = ingest("openai-batch", "--ids-file", listed, "--no-wait", "--into", db, "--json")
    assert result.exit_code == 3
    found = json_lines(result.stdout)
    assert found["batch_1"]["outcome"] == "loaded" and found["batch_2"]["outcome"] == "failed"
    assert "not finished yet" in found["batch_2"]["error"]
    assert oai.hits("/v1/batches/batch_2") == 1


def test_sigterm_stops_the_pollers_and_keeps_the_jobs_loaded(oai, tmp_path):
    serve_batch(oai, 0)
    for n in (1, 2):
        serve_batch(oai, n, batch(n, "in_progress"))  # never ends
    db = tmp_path / "r.duckdb"
    env = {**os.environ, "OPENAI_API_KEY": OKEY, "OPENAI_BASE_URL": oai.api_url + "/v1"}
    cli = [sys.executable, "-c", "from resultloader.cli import main; main()"]
    args = ["ingest", "openai-batch", "--ids-file", ids(tmp_path, "batch_0", "batch_1", "batch_2")]
    args += ["--into", str(db), "--poll-interval", "0.05"]
    proc = subprocess.Popen([*cli, *args], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # until batch_0 is committed (its line comes after the commit)
        if line.startswith("openai-batch batch_0 (completed)"):
            break
    else:
        raise AssertionError("the run ended before batch_0 was loaded")
    time.sleep(0.2)  # the others are being polled
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=30)[1]  # not the hour of --timeout
    assert proc.returncode == 143, err
    assert err.splitlines()[-1].startswith("terminated: openai-batch: 1 job loaded before stay")
    assert query(db, "SELECT job_id, status FROM _resultloader_loads") == [("batch_0", "committed")]
    assert OKEY not in err


def test_a_terminal_sees_the_progress_line_a_pipe_only_the_summary(oai, tmp_path):
    import pty

    serve_batch(oai, 1, batch(1, "in_progress"), batch(1, "in_progress"), batch(1))
    env = {**os.environ, "OPENAI_API_KEY": OKEY, "OPENAI_BASE_URL": oai.api_url + "/v1"}
    cli = [sys.executable, "-c", "from resultloader.cli import main; main()"]
    args = [*cli, "ingest", "openai-batch", "--ids-file", ids(tmp_path, "batch_1")]
    args += ["--into", str(tmp_path / "r.duckdb"), "--poll-interval", "0.3"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    while True:
        try:
            piece = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not piece:
            break
        seen += piece
    os.close(leader)
    assert proc.wait(timeout=30) == 0
    assert b"\r\x1b[2K0 waiting, 1 running, 0 loaded, 0 skipped, 0 failed" in seen
    assert b"1 job: 0 waiting, 0 running, 1 loaded" in seen

    serve_batch(oai, 2)
    piped = ingest("openai-batch", "--ids-file", ids(tmp_path, "batch_2"), "--into",
                   str(tmp_path / "r.duckdb"))  # fmt: skip
    assert "\x1b[2K" not in piped.stderr and "1 job: 0 waiting, 0 running, 1 loaded" in piped.stderr

"""`resultloader ingest ...` through click's runner, against the loopback fake API."""

from __future__ import annotations

import json

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from resultloader.cli import main
from tests.support.fake_api import KEY, PULSE_KEY, FakeApis, Reply
from tests.support.rows import SEED_ROWS

NS, REQ = "products", "req_01"
STATUS = f"/v1/data/{NS}/requests/{REQ}"
FAST = ["--poll-interval", "0.001"]


@pytest.fixture
def fake():
    apis = FakeApis()
    yield apis
    apis.close()
    assert apis.leaks == []


@pytest.fixture
def cli(fake, tmp_path):
    env = {"SAFETYKIT_API_KEY": KEY, "PULSE_API_KEY": PULSE_KEY}

    def invoke(*args: str, **extra_env: str):
        db = ["--into", str(tmp_path / "r.duckdb")]
        runner = CliRunner()
        return runner.invoke(main, ["ingest", *args, *db], env={**env, **extra_env})

    return invoke


def rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT id, output FROM results").fetchall())
    finally:
        con.close()


def sk(status: str, **fields: object) -> dict[str, object]:
    return {"namespace": NS, "request_id": REQ, "status": status, **fields}


def seed_rows() -> list[object]:
    return [json.loads(line) for line in SEED_ROWS.splitlines()]


def sk_args(fake: FakeApis, *more: str) -> list[str]:
    return ["safetykit", "--namespace", NS, "--request-id", REQ, "--base-url", fake.api_url, *more]


def test_safetykit_polls_loads_and_prints_status_lines(fake, cli, tmp_path):
    fake.script(
        STATUS, sk("queued"), sk("ingesting"), sk("ingesting"), sk("succeeded", data=seed_rows())
    )
    result = cli(*sk_args(fake, *FAST))
    assert result.exit_code == 0, result.output
    assert set(rows(tmp_path)) == {"product_12345", "product_67890"}
    lines = result.stderr.splitlines()
    assert [line.split(": ")[1].split(" ")[0] for line in lines[:3]] == [
        "queued",
        "ingesting",
        "succeeded",
    ]  # one line per change, not per check
    assert "safetykit req_01 (succeeded): 2 rows read" in result.stderr


def test_json_report_carries_the_final_status(fake, cli):
    fake.script(STATUS, sk("succeeded", data=seed_rows()))
    result = cli(*sk_args(fake, "--json"))
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert (report["status"], report["provider"], report["job_id"]) == (
        "succeeded",
        "safetykit",
        REQ,
    )
    assert report["rows_read"] == 2 and result.stderr == ""


def test_base_url_from_the_environment(fake, cli, tmp_path):
    fake.script(STATUS, sk("succeeded", data=seed_rows()))
    args = ["safetykit", "--namespace", NS, "--request-id", REQ, "-q"]
    result = cli(*args, SAFETYKIT_BASE_URL=fake.api_url)
    assert result.exit_code == 0, result.output
    assert len(rows(tmp_path)) == 2


def test_no_wait_exits_3_when_not_ready(fake, cli, tmp_path):
    fake.script(STATUS, sk("ingesting"))
    result = cli(*sk_args(fake, "--no-wait", "-q"))
    assert result.exit_code == 3
    assert "not finished yet (status 'ingesting')" in result.stderr
    assert fake.hits(STATUS) == 1 and not (tmp_path / "r.duckdb").exists()


def test_no_wait_loads_when_done(fake, cli, tmp_path):
    fake.script(STATUS, sk("succeeded", data=seed_rows()))
    assert cli(*sk_args(fake, "--no-wait", "-q")).exit_code == 0
    assert len(rows(tmp_path)) == 2


def test_status_file_is_resolved_without_polling(fake, cli, tmp_path):
    saved = tmp_path / "status.json"
    saved.write_text(json.dumps(sk("succeeded", data=seed_rows())))
    result = cli("safetykit", "--status-file", str(saved), "--base-url", fake.api_url, "-q")
    assert result.exit_code == 0, result.output
    assert len(rows(tmp_path)) == 2 and fake.api_seen == []


def test_wrong_key_is_one_line_without_the_key(fake, cli):
    fake.script(STATUS, sk("succeeded", data=[]))
    result = cli(*sk_args(fake), SAFETYKIT_API_KEY="sk-nope-123")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "wrong or missing (HTTP 401)" in result.stderr and "sk-nope-123" not in result.output


def test_failed_job_exits_1_with_the_api_text(fake, cli):
    fake.script(STATUS, sk("failed", error="quota exceeded for namespace"))
    result = cli(*sk_args(fake, "-q"))
    assert result.exit_code == 1 and "quota exceeded for namespace" in result.stderr


def test_reingest_leaves_the_table_and_records_the_ledger(fake, cli, tmp_path):
    fake.script(STATUS, sk("succeeded", data=seed_rows()))
    assert cli(*sk_args(fake, "-q")).exit_code == 0
    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    before = con.execute("SELECT * FROM results ORDER BY id").fetchall()
    con.close()
    second = cli(*sk_args(fake, "--json"))
    report = orjson.loads(second.stdout)
    assert (report["rows_upserted"], report["rows_unchanged"]) == (0, 2)
    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    assert con.execute("SELECT * FROM results ORDER BY id").fetchall() == before
    ledger = con.execute("SELECT provider, job_id, job_status FROM _resultloader_loads").fetchall()
    assert ledger == [("safetykit", REQ, "succeeded")] * 2


def test_batch_csv(fake, cli, tmp_path):
    fake.add_file("b.csv", "id,decision\nd1,approve\nd2,reject\n", "text/csv")
    fake.script(
        "/v1/batches/batch_9",
        {"batch_id": "batch_9", "batch_status": "PENDING", "batch_count": 2, "success_count": 1},
        lambda: {
            "batch_id": "batch_9",
            "batch_status": "SUCCESS",
            "download_url": fake.link("b.csv"),
        },
    )
    args = ["safetykit-batch", "--batch-id", "batch_9", "--base-url", fake.api_url, *FAST]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "PENDING (1/2 done)" in result.stderr
    assert set(rows(tmp_path)) == {"d1", "d2"}


def test_pulse_items_path(fake, cli, tmp_path):
    result_doc = {"pages": [{"id": "p1", "output": {"text": "a"}}, {"id": "p2", "output": None}]}
    fake.script("/job/j1", {"job_id": "j1", "status": "completed", "result": result_doc})
    args = ["pulse", "--job-id", "j1", "--items-path", "pages", "--base-url", fake.api_url, "-q"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert rows(tmp_path) == {"p1": '{"text":"a"}', "p2": None}


def test_pulse_expired_job(fake, cli, tmp_path):
    fake.script("/job/j1", {"job_id": "j1", "status": "expired", "result": {"stub": True}})
    result = cli("pulse", "--job-id", "j1", "--base-url", fake.api_url, "-q")
    assert result.exit_code == 1 and "run the extraction again" in result.stderr
    assert not (tmp_path / "r.duckdb").exists()


def test_pulse_is_url_document(fake, cli, tmp_path):
    fake.add_file("doc.json", b'{"markdown": "# Hi", "n": 18446744073709551617}')
    pointer = {"is_url": True, "url": fake.link("doc.json")}
    fake.script("/job/j2", Reply(200, {"job_id": "j2", "status": "completed", "result": pointer}))
    result = cli("pulse", "--job-id", "j2", "--base-url", fake.api_url, "-q")
    assert result.exit_code == 0, result.output
    assert rows(tmp_path) == {"j2": '{"markdown": "# Hi", "n": 18446744073709551617}'}


def test_a_missing_id_is_a_usage_error(cli):
    result = cli("pulse")
    assert result.exit_code == 2 and "give the job's id" in result.output


def test_help_lists_the_providers():
    result = CliRunner().invoke(main, ["ingest", "--help"])
    assert result.exit_code == 0
    for name in ("safetykit", "safetykit-batch", "pulse"):
        assert name in result.output


def test_json_on_failure_prints_one_object_with_the_error(fake, cli):
    fake.script(STATUS, sk("failed", error="quota exceeded for namespace"))
    result = cli(*sk_args(fake, "--json"))
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["error"]["kind"] == "JobFailed"
    assert "quota exceeded for namespace" in report["error"]["message"]
    assert report["rows_read"] == 0


def test_a_missing_status_file_says_no_such_file(cli, tmp_path):
    result = cli("safetykit", "--status-file", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.json'}: no such file\n"


def test_an_expired_link_in_a_saved_status_without_a_key_says_both(fake, cli, tmp_path):
    saved = tmp_path / "s.json"
    stale = sk(
        "succeeded",
        data_url=fake.link("out.jsonl"),
        data_count=2,
        data_expires_at="2020-01-02T03:04:05.000Z",
    )
    saved.write_text(json.dumps(stale))
    result = cli("safetykit", "--status-file", str(saved), SAFETYKIT_API_KEY="")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "the download link expired at 2020-01-02T03:04:05" in line
    assert "needs its key: set SAFETYKIT_API_KEY" in line
    assert "api_key=" not in result.output and fake.api_seen == []


PAGES = {"pages": [{"page": 1, "output": {"text": "a"}}, {"page": 2, "output": None}]}


def test_pulse_items_without_an_id_are_named_by_item_number(fake, cli):
    fake.script("/job/j1", {"job_id": "j1", "status": "completed", "result": PAGES})
    args = ["pulse", "--job-id", "j1", "--items-path", "pages", "--base-url", fake.api_url, "-q"]
    result = cli(*args)
    assert result.exit_code == 1
    assert "item 1 of the array: no 'id' field" in result.stderr
    assert "line 1" not in result.stderr and "byte" not in result.stderr


@pytest.mark.parametrize("inline", [True, False])
def test_pulse_index_ids_scope_items_by_job(fake, cli, tmp_path, inline):
    for job in ("j1", "j2"):
        result_doc: object = PAGES
        if not inline:  # the {is_url, url} pointer to the same document: the download route
            fake.add_file(f"{job}.json", json.dumps(PAGES).encode())
            result_doc = {"is_url": True, "url": fake.link(f"{job}.json")}
        fake.script(f"/job/{job}", {"job_id": job, "status": "completed", "result": result_doc})
        args = ["pulse", "--job-id", job, "--items-path", "pages", "--index-ids", "-q"]
        result = cli(*args, "--base-url", fake.api_url)
        assert result.exit_code == 0, result.output
    assert rows(tmp_path) == {
        "j1/0": '{"text":"a"}',
        "j1/1": None,
        "j2/0": '{"text":"a"}',
        "j2/1": None,
    }

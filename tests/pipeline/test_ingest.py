"""`ingest` end to end against a real HTTP API on loopback (tests/support/fake_api.py).

Time is faked: polling "sleeps" by advancing a counter, so the tests wait for nothing, and what
they check is what was asked to be slept, never how long anything took.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import LoadOptions
from resultloader.providers.poll import next_delay
from resultloader.testing import FakeClock, MemorySink
from tests.support.fake_api import KEY, PULSE_KEY, FakeApis, Reply
from tests.support.provider_apis import NOW
from tests.support.rows import SEED_ROWS

NS, REQ = "products", "req_01h2m7qdmdjckc30e1mnq6xqfd"
STATUS = f"/v1/data/{NS}/requests/{REQ}"
DOWNLOAD_URL = f"{STATUS}/results/download-url"


@pytest.fixture
def fake(monkeypatch):
    apis = FakeApis()
    for name, value in (
        ("SAFETYKIT_API_KEY", KEY),
        ("PULSE_API_KEY", PULSE_KEY),
        ("SAFETYKIT_BASE_URL", apis.api_url),
        ("PULSE_BASE_URL", apis.api_url),
    ):
        monkeypatch.setenv(name, value)
    yield apis
    apis.close()
    assert apis.leaks == [], "an API key reached the download host"


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


def sk(status: str, **fields: object) -> dict[str, object]:
    return {"namespace": NS, "request_id": REQ, "status": status, **fields}


def sk_ingest(
    clock: FakeClock,
    sink: object,
    *,
    timeout: float | None = None,
    api_key: str | None = None,
    on_error: Any = "fail",
    wait: bool = True,
    **more: Any,  # payload, on_status: as they are
) -> resultloader.LoadReport:
    poll = clock.policy(**({"timeout": timeout} if timeout else {}))
    return resultloader.ingest(
        "safetykit",
        resultloader.Job(REQ, NS),
        sink,
        LoadOptions(on_error=on_error),
        dataclasses.replace(poll, wait=wait),
        api=resultloader.ApiAccess(key=api_key),
        **more,
    )


def import_payload(url: str, expires: datetime = NOW + timedelta(hours=1)) -> dict[str, object]:
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return sk("succeeded", data_url=url, data_count=2, data_expires_at=stamp)


# -- SafetyKit data requests -----------------------------------------------------------------


def test_add_request_polls_until_succeeded_and_loads_inline_rows(fake, clock):
    rows = [json.loads(line) for line in SEED_ROWS.splitlines()]
    fake.script(STATUS, sk("queued", data=[]), sk("ingesting", data=[]), sk("succeeded", data=rows))
    seen: list[resultloader.JobStatus] = []
    sink = MemorySink()
    report = sk_ingest(clock, sink, on_status=seen.append)
    assert [s.status for s in seen] == ["queued", "ingesting", "succeeded"]
    assert set(sink.rows) == {"product_12345", "product_67890"}
    assert sink.rows["product_67890"]["output"]["actions"][0]["queue"] == "high_risk"
    assert (report.status, report.provider, report.job_id, report.rows_read) == (
        "succeeded",
        "safetykit",
        REQ,
        2,
    )
    assert len(clock.sleeps) == 2 and all(3 <= s <= 10 for s in clock.sleeps)


def test_inline_numbers_are_kept_exactly(fake, clock, tmp_path):
    body = (
        '{"namespace":"products","request_id":"' + REQ + '","status":"succeeded","data":[{"id":"n",'
        '"output":{"big":123456789012345678901234567890,"dec":0.12345678901234567890123}}]}'
    )
    fake.script(STATUS, Reply(200, body))
    db = tmp_path / "r.duckdb"
    sk_ingest(clock, db)
    output = duckdb.connect(str(db)).execute("SELECT output FROM results").fetchone()[0]
    assert "123456789012345678901234567890" in output
    assert "0.12345678901234567890123" in output


def test_inline_rows_follow_the_bad_row_policy(fake, clock):
    rows = [{"id": "ok", "output": 1}, {"output": "no id"}, "not an object"]
    fake.script(STATUS, sk("succeeded", data=rows))
    with pytest.raises(resultloader.ParseError, match="item 2 of the array"):
        sk_ingest(clock, MemorySink())
    sink = MemorySink()
    report = sk_ingest(clock, sink, on_error="quarantine")
    assert set(sink.rows) == {"ok"} and report.bad_rows == 2
    assert [(r.line, r.offset) for r in sink.rejects] == [(2, -1), (3, -1)]  # items, not lines


def test_import_request_streams_the_jsonl_without_sending_the_key(fake, clock):
    fake.add_file("out.jsonl.gz", gzip.compress(SEED_ROWS.encode()))
    fake.script(STATUS, sk("uploading"), lambda: import_payload(fake.link("out.jsonl.gz")))
    sink = MemorySink()
    report = sk_ingest(clock, sink)
    assert set(sink.rows) == {"product_12345", "product_67890"}
    assert report.status == "succeeded"
    assert len(fake.files_seen) == 1
    assert not {"authorization", "x-api-key"} & {h.lower() for h in fake.files_seen[0].headers}


def test_over_5_mib_refusal_falls_back_to_the_download_endpoint(fake, clock):
    fake.add_file("big.jsonl", SEED_ROWS)
    refusal = Reply(
        413, {"error": "Response exceeds the 5 MiB inline limit; use the download endpoint"}
    )
    fake.script(STATUS, sk("ingesting"), refusal)
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("big.jsonl")))
    sink = MemorySink()
    report = sk_ingest(clock, sink)
    assert len(sink.rows) == 2 and report.status == "succeeded"
    assert fake.hits(DOWNLOAD_URL) == 1


def test_refusal_recognised_by_its_message_too(fake, clock):
    fake.add_file("big.jsonl", SEED_ROWS)
    fake.script(STATUS, Reply(400, {"message": "Output too large for an inline response"}))
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("big.jsonl")))
    sink = MemorySink()
    sk_ingest(clock, sink)
    assert len(sink.rows) == 2 and fake.hits(DOWNLOAD_URL) == 1


def test_retry_after_on_429_is_honoured(fake, clock):
    fake.script(
        STATUS, Reply(429, {"error": "slow down"}, {"Retry-After": "7"}), sk("succeeded", data=[])
    )
    report = sk_ingest(clock, MemorySink())
    assert report.status == "succeeded"
    assert clock.sleeps == [7.0]
    assert fake.hits(STATUS) == 2


def test_retry_after_as_an_http_date(fake, clock):
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    date = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    fake.script(STATUS, Reply(503, b"", {"Retry-After": date}), sk("succeeded", data=[]))
    sk_ingest(clock, MemorySink())
    assert len(clock.sleeps) == 1 and 20 < clock.sleeps[0] <= 30


def test_retry_after_beyond_the_timeout_gives_up_clearly(fake, clock):
    fake.script(STATUS, Reply(429, b"", {"Retry-After": "900"}), sk("succeeded", data=[]))
    with pytest.raises(resultloader.PollError, match="asks to wait 900s"):
        sk_ingest(clock, MemorySink(), timeout=60)


def test_503_then_success(fake, clock):
    fake.script(STATUS, Reply(503, {"error": "unavailable"}), sk("succeeded", data=[]))
    assert sk_ingest(clock, MemorySink()).status == "succeeded"
    assert fake.hits(STATUS) == 2


def test_persistent_503_fails_after_retrying(fake, clock):
    fake.script(STATUS, Reply(503, {"error": "unavailable"}))
    with pytest.raises(resultloader.PollError, match="HTTP 503, still after retrying"):
        sk_ingest(clock, MemorySink())
    assert fake.hits(STATUS) == 8  # the first try and 7 retries
    assert 50 < sum(clock.sleeps) < 100  # backing off for about a minute


def test_other_4xx_are_not_retried(fake, clock):
    fake.script(STATUS, Reply(404, {"error": "request not found"}))
    with pytest.raises(resultloader.PollError, match=r"not found.*request not found"):
        sk_ingest(clock, MemorySink())
    assert fake.hits(STATUS) == 1


def test_expired_link_is_refreshed_and_the_load_continues(fake, clock):
    fake.add_file("out.jsonl", SEED_ROWS)
    fake.script(STATUS, import_payload(fake.link("out.jsonl", valid=False)))
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("out.jsonl")))
    sink = MemorySink()
    sk_ingest(clock, sink)
    assert len(sink.rows) == 2
    assert [s.path for s in fake.files_seen] == ["/out.jsonl", "/out.jsonl"]  # 403, then 200
    assert fake.hits(DOWNLOAD_URL) == 1


def test_link_expiring_mid_download_is_refreshed_and_the_load_continues(fake, clock, tmp_path):
    rows = "".join(f'{{"id":"r{i}","output":{{"n":{i}}}}}\n' for i in range(3000))
    fake.add_file("big.jsonl", rows)
    fake.script(STATUS, import_payload(fake.link("big.jsonl", expire_after=20_000)))
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("big.jsonl")))
    db = tmp_path / "r.duckdb"
    report = sk_ingest(clock, str(db))
    con = duckdb.connect(str(db))
    count = con.execute("SELECT count(*) FROM results").fetchone()
    last = con.execute("SELECT output FROM results WHERE id = 'r2999'").fetchone()
    con.close()
    assert report.rows_read == 3000 and count == (3000,) and last == ('{"n":2999}',)
    assert fake.hits(DOWNLOAD_URL) == 1  # the fresh link came from the API
    assert len(fake.files_seen) >= 3  # cut short, refused as expired, then the fresh link
    assert not fake.leaks


def test_a_link_past_its_expiry_is_never_requested(fake, clock):
    fake.add_file("out.jsonl", SEED_ROWS)
    stale = import_payload(fake.link("out.jsonl"), expires=NOW - timedelta(minutes=1))
    fake.script(STATUS, stale)
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("out.jsonl")))
    sink = MemorySink()
    sk_ingest(clock, sink)
    assert len(sink.rows) == 2 and len(fake.files_seen) == 1 and fake.hits(DOWNLOAD_URL) == 1


def test_no_fresh_link_to_be_had_is_a_clear_error(fake, clock):
    fake.add_file("out.jsonl", SEED_ROWS)
    fake.script(STATUS, import_payload(fake.link("out.jsonl", valid=False)))
    fake.script(DOWNLOAD_URL, lambda: import_payload(fake.link("out.jsonl", valid=False)))
    sink = MemorySink()
    with pytest.raises(resultloader.DownloadError, match="expired") as info:
        sk_ingest(clock, sink)
    assert "X-Amz-Signature" not in str(info.value) and sink.rows == {}


def test_failed_request_raises_with_the_api_text(fake, clock):
    fake.script(STATUS, sk("ingesting"), sk("failed", error="Namespace products has no schema"))
    with pytest.raises(resultloader.JobFailed, match="Namespace products has no schema"):
        sk_ingest(clock, MemorySink())


def test_wrong_api_key_is_one_line_and_never_echoed(fake, clock):
    fake.script(STATUS, sk("succeeded", data=[]))
    with pytest.raises(resultloader.PollError) as info:
        sk_ingest(clock, MemorySink(), api_key="sk-wrong-key-42")
    message = str(info.value)
    assert "wrong or missing (HTTP 401)" in message and "SAFETYKIT_API_KEY" in message
    assert "\n" not in message and "sk-wrong-key-42" not in message
    assert fake.hits(STATUS) == 1  # a 401 is not retried


def test_a_key_with_a_trailing_newline_works_and_a_garbled_one_is_not_echoed(fake, clock):
    fake.script(STATUS, sk("succeeded", data=[]))
    assert sk_ingest(clock, MemorySink(), api_key=KEY + "\n").status == "succeeded"
    with pytest.raises(resultloader.PollError, match="spaces or control characters") as info:
        sk_ingest(clock, MemorySink(), api_key="sk-garbled\r\nkey")
    assert "garbled" not in str(info.value)


def test_missing_api_key(fake, clock, monkeypatch):
    monkeypatch.delenv("SAFETYKIT_API_KEY")
    with pytest.raises(resultloader.PollError, match="no API key: set SAFETYKIT_API_KEY"):
        sk_ingest(clock, MemorySink())
    assert fake.api_seen == []


def test_timeout_stops_waiting(fake, clock):
    fake.script(STATUS, sk("ingesting"))
    with pytest.raises(resultloader.PollError, match="still 'ingesting' after 60s"):
        sk_ingest(clock, MemorySink(), timeout=60)
    assert sum(clock.sleeps) == pytest.approx(60)
    assert 6 <= fake.hits(STATUS) <= 21  # every 3 to 10 s


def test_no_wait_checks_once(fake, clock):
    fake.script(STATUS, sk("ingesting"))
    with pytest.raises(resultloader.NotReady) as info:
        sk_ingest(clock, MemorySink(), wait=False)
    assert info.value.exit_code == 3 and fake.hits(STATUS) == 1 and clock.sleeps == []


def test_a_saved_payload_is_resolved_without_polling(fake, clock):
    rows = [json.loads(line) for line in SEED_ROWS.splitlines()]
    sink = MemorySink()
    report = sk_ingest(clock, sink, payload=sk("succeeded", data=rows))
    assert len(sink.rows) == 2 and report.status == "succeeded" and fake.api_seen == []


def test_backoff_grows_between_floor_and_cap():
    import random

    rng = random.Random(7)
    delays = [next_delay(n, 3.0, 10.0, 1.5, rng) for n in range(12)]
    assert all(3.0 <= d <= 10.0 for d in delays)
    assert delays[0] == 3.0 and max(delays[-4:]) > 6.0


def test_reingest_leaves_the_table_unchanged_and_the_ledger_records_the_job(fake, clock, tmp_path):
    fake.add_file("out.jsonl", SEED_ROWS)
    fake.script(STATUS, lambda: import_payload(fake.link("out.jsonl")))
    db = tmp_path / "r.duckdb"
    first = sk_ingest(clock, db)
    con = duckdb.connect(str(db))
    before = con.execute("SELECT * FROM results ORDER BY id").fetchall()
    con.close()
    second = sk_ingest(clock, db)
    con = duckdb.connect(str(db))
    assert con.execute("SELECT * FROM results ORDER BY id").fetchall() == before
    assert (first.rows_upserted, second.rows_upserted, second.rows_unchanged) == (2, 0, 2)
    ledger = con.execute(
        "SELECT provider, job_id, job_status, status FROM _resultloader_loads"
    ).fetchall()
    assert ledger == [("safetykit", REQ, "succeeded", "committed")] * 2


def test_secrets_stay_out_of_reprs(fake):
    from resultloader.providers import get_provider
    from resultloader.providers._client import ApiClient

    client = ApiClient(get_provider("safetykit"), api_key="sk-secret-999")
    assert "sk-secret-999" not in repr(client)
    location = resultloader.Download("https://h/x?sig=abc", headers={"Authorization": "Bearer k"})
    assert "abc" not in repr(location) and "Bearer" not in repr(location)


# -- SafetyKit batches ---------------------------------------------------------------------------

BATCH_PATH = "/v1/batches/batch_01"


def batch(status: str, **fields: object) -> dict[str, object]:
    counts = {"batch_count": 3, "success_count": 0, "error_count": 0, "pending_count": 3}
    return {
        "batch_id": "batch_01",
        "batch_status": status,
        "cancelled_count": 0,
        **counts,
        **fields,
    }


def test_batch_csv_is_loaded_with_counts_as_progress(fake, clock):
    csv = "id,decision,score\nd1,approve,0.91\nd2,reject,0.12\nd3,approve,0.77\n"
    fake.add_file("results.csv", csv, "text/csv")
    fake.script(
        BATCH_PATH,
        batch("WAITING_FOR_UPLOAD"),
        batch("PENDING", success_count=1, pending_count=2),
        lambda: batch(
            "SUCCESS", success_count=3, pending_count=0, download_url=fake.link("results.csv")
        ),
    )
    seen: list[resultloader.JobStatus] = []
    sink = MemorySink()
    report = resultloader.ingest(
        "safetykit-batch", "batch_01", sink, poll=clock.policy(), on_status=seen.append
    )
    assert set(sink.rows) == {"d1", "d2", "d3"} and report.status == "SUCCESS"
    assert sink.rows["d2"]["extra"] == {"decision": "reject", "score": "0.12"}
    assert seen[1].counts == {"total": 3, "succeeded": 1, "errors": 0, "pending": 2, "cancelled": 0}
    assert "1/3 done" in seen[1].line()


@pytest.mark.parametrize(
    ("status", "error"),
    [("ERROR", resultloader.JobFailed), ("CANCELLED", resultloader.JobCancelled)],
)
def test_batch_error_and_cancelled(fake, clock, status, error):
    fake.script(BATCH_PATH, batch("PENDING"), batch(status, error_count=3))
    with pytest.raises(error):
        resultloader.ingest("safetykit-batch", "batch_01", MemorySink(), poll=clock.policy())


# -- Pulse ---------------------------------------------------------------------------------------

JOB = "job_7f3a"
JOB_PATH = f"/job/{JOB}"
DOCUMENT = (
    b'{"markdown": "# Invoice 42", "total": 1234567890123456789012,'
    b' "rate": 0.1000000000000000055511}\n'
)


def pulse(status: str, **fields: object) -> dict[str, object]:
    return {"job_id": JOB, "status": status, "created_at": "2026-11-22T11:00:00Z", **fields}


def pulse_ingest(
    clock: FakeClock, sink: object, *, api_key: str | None = None, items_path: str | None = None
) -> resultloader.LoadReport:
    options = LoadOptions(items_path=items_path)
    access = resultloader.ApiAccess(key=api_key)
    return resultloader.ingest("pulse", JOB, sink, options, clock.policy(), api=access)


def test_pulse_inline_result_is_one_exact_row(fake, clock, tmp_path):
    body = f'{{"job_id":"{JOB}","status":"completed","result":{DOCUMENT.decode().strip()}}}'
    fake.script(JOB_PATH, pulse("pending"), pulse("processing"), Reply(200, body))
    db = tmp_path / "r.duckdb"
    report = pulse_ingest(clock, db)
    con = duckdb.connect(str(db))
    rows = con.execute("SELECT id, output FROM results").fetchall()
    assert report.status == "completed" and len(rows) == 1 and rows[0][0] == JOB
    assert "1234567890123456789012" in rows[0][1] and "0.1000000000000000055511" in rows[0][1]
    assert all(1 <= s <= 30 for s in clock.sleeps)


def test_pulse_inline_with_items_path(fake, clock):
    result = {"pages": [{"id": "p1", "output": "one"}, {"id": "p2", "output": "two"}]}
    fake.script(JOB_PATH, pulse("completed", result=result))
    sink = MemorySink()
    pulse_ingest(clock, sink, items_path="pages")
    assert {k: v["output"] for k, v in sink.rows.items()} == {"p1": "one", "p2": "two"}


def test_pulse_is_url_document_lands_byte_exact_without_the_key(fake, clock, tmp_path):
    fake.add_file("job.json", DOCUMENT, "application/json")
    fake.script(
        JOB_PATH, lambda: pulse("completed", result={"is_url": True, "url": fake.link("job.json")})
    )
    db = tmp_path / "r.duckdb"
    pulse_ingest(clock, db)
    row = duckdb.connect(str(db)).execute("SELECT id, output FROM results").fetchone()
    assert row == (JOB, DOCUMENT.decode().strip())
    assert "x-api-key" not in {h.lower() for h in fake.files_seen[0].headers}


def test_pulse_is_url_with_items_path(fake, clock):
    fake.add_file("job.json", b'{"pages": [{"id": "p1", "output": 1}, {"id": "p2", "output": 2}]}')
    fake.script(
        JOB_PATH, lambda: pulse("completed", result={"is_url": True, "url": fake.link("job.json")})
    )
    sink = MemorySink()
    pulse_ingest(clock, sink, items_path="pages")
    assert set(sink.rows) == {"p1", "p2"}


def test_pulse_proxy_url_gets_the_key_once(fake, clock):
    fake.script(
        JOB_PATH, pulse("completed", result={"is_url": True, "url": fake.proxy(JOB, DOCUMENT)})
    )
    sink = MemorySink()
    pulse_ingest(clock, sink)
    assert sink.rows[JOB]["output"]["markdown"] == "# Invoice 42"
    proxy = [s for s in fake.api_seen if s.path.startswith("/large_results/")]
    assert len(proxy) == 1 and proxy[0].headers.get("x-api-key") == PULSE_KEY


def test_pulse_proxy_redirect_does_not_carry_the_key_to_s3(fake, clock):
    url = fake.proxy(JOB, DOCUMENT, redirect=True)
    fake.script(JOB_PATH, pulse("completed", result={"is_url": True, "url": url}))
    sink = MemorySink()
    pulse_ingest(clock, sink)
    assert JOB in sink.rows and len(fake.files_seen) == 1  # the fixture asserts no leak


def test_pulse_used_proxy_link_is_a_clear_error_not_a_refresh(fake, clock):
    url = fake.proxy(JOB, DOCUMENT)
    fake.proxied.clear()  # already used: the proxy answers 403
    fake.script(JOB_PATH, pulse("completed", result={"is_url": True, "url": url}))
    with pytest.raises(resultloader.JobExpired, match=r"single-use.*run the extraction again"):
        pulse_ingest(clock, MemorySink())
    assert fake.hits(JOB_PATH) == 1  # polling again cannot help: it was not tried


def test_pulse_expired_presigned_link_is_refreshed_by_polling_again(fake, clock):
    fake.add_file("job.json", DOCUMENT)
    fake.script(
        JOB_PATH,
        pulse("completed", result={"is_url": True, "url": fake.link("job.json", valid=False)}),
        lambda: pulse("completed", result={"is_url": True, "url": fake.link("job.json")}),
    )
    sink = MemorySink()
    pulse_ingest(clock, sink)
    assert JOB in sink.rows and fake.hits(JOB_PATH) == 2


def test_pulse_expired_job_is_an_error_and_its_stub_is_not_loaded(fake, clock, tmp_path):
    fake.script(JOB_PATH, pulse("expired", result={"retention": "purged", "pages": 3}))
    db = tmp_path / "r.duckdb"
    with pytest.raises(resultloader.JobExpired, match="run the extraction again"):
        pulse_ingest(clock, db)
    assert not db.exists()


@pytest.mark.parametrize("spelling", ["canceled", "cancelled"])
def test_pulse_cancelled(fake, clock, spelling):
    fake.script(JOB_PATH, pulse(spelling))
    with pytest.raises(resultloader.JobCancelled):
        pulse_ingest(clock, MemorySink())


def test_pulse_failed_and_wrong_key(fake, clock):
    fake.script(JOB_PATH, pulse("failed", error="Unsupported file type: .heic"))
    with pytest.raises(resultloader.JobFailed, match="Unsupported file type"):
        pulse_ingest(clock, MemorySink())
    with pytest.raises(resultloader.PollError, match="PULSE_API_KEY") as info:
        pulse_ingest(clock, MemorySink(), api_key="pk-wrong")
    assert "pk-wrong" not in str(info.value)
    assert fake.api_seen[-1].headers.get("x-api-key") == "pk-wrong"
    assert "Authorization" not in fake.api_seen[-1].headers


def test_http_base_url_off_this_machine_is_refused(clock):
    with pytest.raises(ValueError, match="must be https"):
        resultloader.ingest(
            "pulse",
            JOB,
            MemorySink(),
            api=resultloader.ApiAccess(base_url="http://api.example.com", key="k"),
        )


def test_a_status_redirect_to_another_host_does_not_carry_the_key(fake, clock):
    # requests itself drops only `Authorization` on such a redirect, not `x-api-key`
    fake.add_file(
        "status.json", json.dumps(pulse("completed", result={"a": 1})), "application/json"
    )
    fake.script(JOB_PATH, lambda: Reply(302, b"", {"Location": fake.link("status.json")}))
    sink = MemorySink()
    pulse_ingest(clock, sink)
    assert sink.rows[JOB]["output"] == {"a": 1}
    assert len(fake.files_seen) == 1  # the fixture asserts the key did not reach it


def test_connection_errors_are_retried_then_reported(clock, monkeypatch):
    import socket

    # bound and never listened on, held throughout: refused, and no one else can take it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        monkeypatch.setenv("PULSE_API_KEY", PULSE_KEY)
        with pytest.raises(resultloader.PollError, match=r"cannot reach http://127\.0\.0\.1"):
            resultloader.ingest(
                "pulse",
                JOB,
                MemorySink(),
                poll=clock.policy(),
                api=resultloader.ApiAccess(base_url=f"http://127.0.0.1:{port}"),
            )
    assert len(clock.sleeps) >= 2  # backed off between attempts, through the injected clock


def test_base_urls_default_to_the_public_apis(monkeypatch):
    from resultloader.providers import get_provider
    from resultloader.providers._client import ApiClient

    for name in ("SAFETYKIT_BASE_URL", "PULSE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert ApiClient(get_provider("safetykit")).base_url == "https://api.safetykit.com"
    assert ApiClient(get_provider("safetykit-batch")).base_url == "https://api.safetykit.com"
    assert ApiClient(get_provider("pulse")).base_url == "https://api.runpulse.com"
    monkeypatch.setenv("PULSE_BASE_URL", "https://pulse.internal.example/")
    assert ApiClient(get_provider("pulse")).base_url == "https://pulse.internal.example"

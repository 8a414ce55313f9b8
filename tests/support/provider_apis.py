"""The OpenAI, Anthropic, Gemini and Shopify fakes' shared parts: keys, payloads, checks."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import duckdb

from resultloader.testing import FakeApi, Reply

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)

OKEY, AKEY, GKEY, SKEY = "sk-oai-0123456789", "sk-ant-0123456789", "AIza-0123456789", "shpat_0123"
BIG = 123456789012345678901234567890


def lines(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def no_secret(fake: FakeApi, *texts: str) -> None:
    """The key reached neither the download host nor any output."""
    assert fake.leaks == []
    for text in texts:
        for secret in (OKEY, AKEY, GKEY, SKEY):
            assert secret not in text


def ledger(db) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT status, job_status, rows_read FROM _resultloader_loads"
        ).fetchall()
    finally:
        con.close()


OAI_BATCH = "/v1/batches/batch_abc"


def oai_batch(status: str, **fields: Any) -> dict[str, Any]:
    batch = {
        "id": "batch_abc",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1714508499,
        "expires_at": 1714594899,
        "request_counts": {"total": 3, "completed": 1, "failed": 2},
        "metadata": None,
    }
    return {**batch, **fields}


OAI_OUT = lines(
    {
        "id": "batch_req_1",
        "custom_id": "r1",
        "response": {"status_code": 200, "request_id": "req_1", "body": {"n": BIG, "ok": True}},
        "error": None,
    },
    {
        "id": "batch_req_2",
        "custom_id": "r2",
        "response": {"status_code": 400, "request_id": "req_2", "body": {"error": "bad"}},
        "error": None,
    },
)
OAI_ERR = lines(
    {
        "id": "batch_req_3",
        "custom_id": "r3",
        "response": None,
        "error": {"code": "batch_expired", "message": "not run in time"},
    }
)
DONE = {"output_file_id": "file-out", "error_file_id": "file-err"}


def oai_files(fake: FakeApi) -> None:
    fake.script("/v1/files/file-out/content", Reply(200, OAI_OUT))
    fake.script("/v1/files/file-err/content", Reply(200, OAI_ERR))


# -- numbered OpenAI batches, for many jobs at once


def batch(n: int, status: str = "completed", created: int = 1764547200) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": f"batch_{n}",
        "object": "batch",
        "status": status,
        "output_file_id": f"file-out-{n}" if done else None,
        "error_file_id": None,
        "created_at": created,
        "errors": {"data": [{"message": f"batch {n} input is invalid"}]} if not done else None,
        "request_counts": {"total": 2, "completed": 2 if done else 0, "failed": 0},
    }


def output(n: int) -> bytes:
    rows = [
        {"custom_id": f"b{n}-r{i}", "response": {"status_code": 200, "body": {"n": n}}}
        for i in (1, 2)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def serve_batch(fake: FakeApi, n: int, *replies: Any) -> None:
    fake.script(f"/v1/batches/batch_{n}", *(replies or (batch(n),)))
    fake.script(f"/v1/files/file-out-{n}/content", Reply(200, output(n)))

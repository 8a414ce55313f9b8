"""The OpenAI batch the orchestrator tests (Dagster, Airflow) run: its payloads, and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resultloader.testing import FakeApi, Reply
from tests.support.duckdb_files import query
from tests.support.provider_apis import lines, oai_batch

KEY = "sk-orchestrated-0123456789abcdef"
BATCH = "/v1/batches/batch_abc"
FAILED = "/v1/batches/batch_bad"
REASON = "the input file's line 3 is not JSON"


def answer(custom_id: str, tokens: int) -> dict[str, Any]:
    body = {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"content": f"answer {custom_id}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens - 3, "completion_tokens": 3, "total_tokens": tokens},
    }
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": f"req_{custom_id}", "body": body},
        "error": None,
    }


REFUSED = {
    "id": "batch_req_q3",
    "custom_id": "q3",
    "response": {"status_code": 400, "request_id": "req_q3", "body": {"error": {"type": "bad"}}},
    "error": None,
}
NOT_RUN = {
    "id": "batch_req_q4",
    "custom_id": "q4",
    "response": None,
    "error": {"code": "batch_expired", "message": "not run in time"},
}
OUTPUT = lines(answer("q1", 10), answer("q2", 20), REFUSED)
ERRORS = lines(NOT_RUN)
STATUSES = {"succeeded": 2, "errored": 1, "expired": 1}  # by the provider's `status` column
TOKENS = 30


def script_batch(fake: FakeApi, *statuses: str) -> None:
    """The batch answers each status in turn (the last one from then on); it ends completed
    with an output and an error file, or failed with REASON."""
    done = {"output_file_id": "file-out", "error_file_id": "file-err"}
    counts = {"request_counts": {"total": 4, "completed": 3, "failed": 1}}
    fake.script(
        BATCH, *(oai_batch(s, **counts, **(done if s == "completed" else {})) for s in statuses)
    )
    fake.script("/v1/files/file-out/content", Reply(200, OUTPUT))
    fake.script("/v1/files/file-err/content", Reply(200, ERRORS))
    errors = {"object": "list", "data": [{"code": "invalid_json", "message": REASON}]}
    fake.script(FAILED, oai_batch("failed", id="batch_bad", errors=errors))


def ledger_ids(db: Path, source: str) -> list[str]:
    sql = f"SELECT load_id FROM _resultloader_loads WHERE source = '{source}' ORDER BY started_at"
    return [row[0] for row in query(db, sql)]


def no_key_in(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


def files_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )

"""Resolvers are pure: status payload in, Location (or a clear error) out. The payloads here are
the seeds' literal examples (seeds 000-004), plus the cases the pages describe in words."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import resultloader
from resultloader import Download, Inline
from resultloader.providers import get_provider, provider_names

# seed 000, "Checking request status"
SK_RUNNING = """{ "namespace": "products", "request_id": "req_01h2m7qdmdjckc30e1mnq6xqfd",
  "status": "ingesting", "data": [] }"""
# seed 000, add request output
SK_ADD = """{ "namespace": "products", "request_id": "req_01h2m7qdmdjckc30e1mnq6xqfd",
  "status": "succeeded", "data": [ { "id": "product_12345", "output": { "actions": [],
  "labels": [{ "label": "policy.example_violation" }], "fields": {} }, "metadata": {},
  "url": "https://app.safetykit.com/..." } ] }"""
# seed 000, import request output
SK_IMPORT = """{ "namespace": "products", "request_id": "req_01h2m7qdmdjckc30e1mnq6xqfd",
  "status": "succeeded", "data_url": "https://s3.amazonaws.com/...", "data_count": 1200,
  "data_expires_at": "2026-01-15T12:30:00.000Z" }"""
# seeds 001 and 002, the SDK / REST example response
SK_SDK = """{
  "data": [
    {
      "id": "item-001",
      "output": {
        "actions": [
          {}
        ],
        "fields": {},
        "labels": [
          {
            "label": "illegal_drugs.violation"
          },
          {
            "label": "hazardous.violation"
          }
        ]
      },
      "url": "https://app.safetykit.com/...",
      "metadata": {
        "internal-ref": "bar"
      }
    }
  ],
  "namespace": "products",
  "request_id": "request_01KHSKHQSYJN4A5P7RRVEXHWE9",
  "status": "succeeded"
}"""
# seed 003
BATCH = """{
  "batch_count": 2000,
  "batch_id": "batch_01hf89meedvef6pc00njv3ezh0",
  "batch_status": "SUCCESS",
  "cancelled_count": 0,
  "download_url": "https://safetykit-batch-downloads-production.s3.us-west-2.amazonaws.com/...",
  "error_count": 0,
  "pending_count": 540,
  "success_count": 1460,
  "upload_url": null,
  "policy_id": "",
  "policy_version": ""
}"""


def sk(text: str, **changes: object) -> dict[str, object]:
    return {**json.loads(text), **changes}


def test_safetykit_running_is_not_ready():
    with pytest.raises(resultloader.NotReady, match="ingesting"):
        resultloader.resolve("safetykit", sk(SK_RUNNING))
    for status in ("queued", "uploading"):
        with pytest.raises(resultloader.NotReady):
            resultloader.resolve("safetykit", sk(SK_RUNNING, status=status))


def test_safetykit_add_request_is_inline():
    location = resultloader.resolve("safetykit", sk(SK_ADD))
    assert isinstance(location, Inline)
    assert [row["id"] for row in location.rows] == ["product_12345"]
    assert location.rows[0]["output"]["labels"] == [{"label": "policy.example_violation"}]
    assert location.document_id is None


def test_safetykit_sdk_example_is_inline():
    location = resultloader.resolve("safetykit", sk(SK_SDK))
    assert isinstance(location, Inline)
    assert location.rows[0]["metadata"] == {"internal-ref": "bar"}


def test_safetykit_import_request_is_a_jsonl_download():
    location = resultloader.resolve("safetykit", sk(SK_IMPORT))
    assert isinstance(location, Download)
    assert location.url == "https://s3.amazonaws.com/..."
    assert (location.format, location.count) == ("jsonl", 1200)
    assert location.expires_at == datetime(2026, 1, 15, 12, 30, tzinfo=timezone.utc)
    assert location.expired(datetime(2026, 1, 15, 12, 30, 1, tzinfo=timezone.utc))
    assert not location.expired(datetime(2026, 1, 15, 12, 29, tzinfo=timezone.utc))
    assert location.headers == {} and location.refresh is None  # resolvers do no I/O


def test_shape_is_told_by_data_url_not_by_request_type():
    # an import request before success has data_url null; after, data_url wins over data
    with pytest.raises(resultloader.NotReady):
        resultloader.resolve("safetykit", sk(SK_IMPORT, status="uploading", data_url=None))
    both = sk(SK_IMPORT, data=[])
    assert isinstance(resultloader.resolve("safetykit", both), Download)


def test_safetykit_failed_carries_the_api_error_text():
    payload = sk(SK_RUNNING, status="failed", error="schema mismatch in field price")
    with pytest.raises(resultloader.JobFailed, match="schema mismatch in field price"):
        resultloader.resolve("safetykit", payload)


def test_batch_success_is_a_csv_download_and_counts_are_progress():
    payload = sk(BATCH)
    location = resultloader.resolve("safetykit-batch", payload)
    assert isinstance(location, Download)
    assert location.url.startswith("https://safetykit-batch-downloads-production.s3")
    assert (location.format, location.count) == ("csv", 2000)
    counts = get_provider("safetykit-batch").counts(payload)
    assert counts == {"total": 2000, "succeeded": 1460, "errors": 0, "pending": 540, "cancelled": 0}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("WAITING_FOR_UPLOAD", resultloader.NotReady),
        ("PENDING", resultloader.NotReady),
        ("ERROR", resultloader.JobFailed),
        ("CANCELLED", resultloader.JobCancelled),
    ],
)
def test_batch_other_statuses(status, error):
    with pytest.raises(error):
        resultloader.resolve("safetykit-batch", sk(BATCH, batch_status=status))


def test_batch_error_names_the_counts():
    payload = sk(BATCH, batch_status="ERROR", error_count=7, message="policy not found")
    with pytest.raises(
        resultloader.JobFailed, match=r"7 of 2000 decisions failed\): policy not found"
    ):
        resultloader.resolve("safetykit-batch", payload)


PULSE = {"job_id": "job_abc", "created_at": "2026-01-01T00:00:00Z", "updated_at": None}


def test_pulse_inline_result_is_one_row_keyed_by_the_job_id():
    result = {"markdown": "# Invoice", "tables": [{"rows": 3}]}
    location = resultloader.resolve("pulse", {**PULSE, "status": "completed", "result": result})
    assert isinstance(location, Inline)
    assert location.rows == [{"id": "job_abc", "output": result}]
    assert location.document_id == "job_abc"


def test_pulse_items_path_makes_items_the_rows():
    result = {"extraction": {"items": [{"id": "a", "output": 1}, {"id": "b", "output": 2}]}}
    payload = {**PULSE, "status": "completed", "result": result}
    location = resultloader.resolve("pulse", payload, items_path="extraction.items")
    assert isinstance(location, Inline) and location.document_id is None
    assert [r["id"] for r in location.rows] == ["a", "b"]
    with pytest.raises(resultloader.ResolveError, match="no items at 'nope'"):
        resultloader.resolve("pulse", payload, items_path="nope")


def test_pulse_is_url_pointer_is_a_json_document_download():
    pointer = {"is_url": True, "url": "https://pulse-results.s3.amazonaws.com/job_abc.json?X=1"}
    location = resultloader.resolve("pulse", {**PULSE, "status": "completed", "result": pointer})
    assert isinstance(location, Download)
    assert (location.format, location.document_id) == ("json", "job_abc")
    assert "X=1" not in repr(location)  # the signature stays out of reprs


@pytest.mark.parametrize("spelling", ["canceled", "cancelled"])
def test_pulse_accepts_both_spellings_of_cancelled(spelling):
    with pytest.raises(resultloader.JobCancelled):
        resultloader.resolve("pulse", {**PULSE, "status": spelling})


def test_pulse_expired_says_run_it_again_and_ignores_the_stub():
    stub = {"is_url": False, "retention": "purged"}
    with pytest.raises(resultloader.JobExpired, match="run the extraction again"):
        resultloader.resolve("pulse", {**PULSE, "status": "expired", "result": stub})


def test_pulse_failed_and_running():
    with pytest.raises(resultloader.JobFailed, match="page 3 could not be read"):
        resultloader.resolve(
            "pulse", {**PULSE, "status": "failed", "error": "page 3 could not be read"}
        )
    for status in ("pending", "processing"):
        with pytest.raises(resultloader.NotReady):
            resultloader.resolve("pulse", {**PULSE, "status": status})


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "s3://bucket/key.jsonl",
        "ftp://example.com/x",
        "http://example.com/x.jsonl",
        "",
        None,
    ],
)
def test_download_urls_must_be_https_or_loopback_http(url):
    with pytest.raises(resultloader.ResolveError):
        resultloader.resolve("safetykit", sk(SK_IMPORT, data_url=url))


def test_loopback_http_is_allowed():
    location = resultloader.resolve("safetykit", sk(SK_IMPORT, data_url="http://127.0.0.1:9/x"))
    assert isinstance(location, Download)


def test_unknown_status_and_unknown_provider():
    with pytest.raises(resultloader.ResolveError, match="unknown status 'paused'"):
        resultloader.resolve("safetykit", sk(SK_RUNNING, status="paused"))
    with pytest.raises(ValueError, match="known: anthropic-batch, azure-openai-batch, "):
        resultloader.resolve("openai", {})
    assert provider_names() == [
        "anthropic-batch",
        "azure-openai-batch",
        "bedrock-batch",
        "gemini-batch",
        "mistral-batch",
        "openai-batch",
        "pulse",
        "safetykit",
        "safetykit-batch",
        "shopify-bulk",
    ]


def test_status_maps_and_polling_guidance():
    assert get_provider("safetykit").states["succeeded"] == "succeeded"
    assert (get_provider("safetykit").poll_floor, get_provider("safetykit").poll_cap) == (3, 10)
    assert get_provider("safetykit-batch").poll_floor == 3
    assert get_provider("pulse").auth_header == "x-api-key"
    assert get_provider("safetykit").auth_header == "Authorization"

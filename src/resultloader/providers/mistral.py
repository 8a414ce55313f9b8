"""Mistral batch jobs: `GET /v1/batch/jobs/{id}` with `Authorization: Bearer <MISTRAL_API_KEY>`.

A job ends `SUCCESS` with an `output_file` (the requests that got an answer) and maybe an
`error_file`, both JSONL read through the API, `GET /v1/files/{id}/content`, with the key. Their
lines are OpenAI Batch's shape, `{id, custom_id, response: {status_code, body}, error}` (the
mistralai SDK's own examples read `response.body`), so the row mapping is OpenAI's. A job that
timed out (`TIMEOUT_EXCEEDED`), was cancelled or failed after it ran may still have an output
file with what finished: loaded only with `--partial`.
"""

from __future__ import annotations

from typing import ClassVar

from .._columns import Column
from .._errors import ResolveError
from .._mapping import RowMapping
from .base import Job, Payload, Provider, State, error_text, quoted, register
from .location import Download, Location, as_count
from .openai import MAPPING

# Chat and FIM completions (`content` a string, or chunks for reasoning models), OCR pages;
# an error body is Mistral's `{object: error, message, type, code}` or OpenAI's `{error: {...}}`
COLUMNS = (
    Column(
        "status",
        sql="CASE WHEN output IS NOT NULL THEN 'succeeded' ELSE 'errored' END",
    ),
    Column("model", paths=("output.model",)),
    Column(
        "text",
        paths=(
            "output.choices[0].message.content[*].text",
            "output.choices[0].message.content",
            "output.pages[*].markdown",
        ),
    ),
    Column("finish_reason", paths=("output.choices[0].finish_reason",)),
    Column("input_tokens", "bigint", ("output.usage.prompt_tokens",)),
    Column("output_tokens", "bigint", ("output.usage.completion_tokens",)),
    Column("total_tokens", "bigint", ("output.usage.total_tokens",)),
    Column(
        "error_type",
        paths=(
            "extra.response.body.type",
            "extra.response.body.error.type",
            "extra.error.type",
            "extra.error.code",
        ),
    ),
    Column(
        "error_message",
        paths=(
            "extra.response.body.message",
            "extra.response.body.error.message",
            "extra.response.body.detail",
            "extra.error.message",
        ),
    ),
)
_COUNTS = {
    "total_requests": "total",
    "succeeded_requests": "succeeded",
    "failed_requests": "failed",
}


@register
class MistralBatch(Provider):
    name: ClassVar[str] = "mistral-batch"
    brand: ClassVar[str] = "Mistral batch job"
    title: ClassVar[str] = "A Mistral batch job: its output and error files, keyed by custom_id."
    base_url: ClassVar[str] = "https://api.mistral.ai"
    key_env: ClassVar[str] = "MISTRAL_API_KEY"
    base_url_env: ClassVar[str] = "MISTRAL_BASE_URL"
    auth_header: ClassVar[str] = "Authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    job_flag: ClassVar[str] = "--job-id"
    job_help: ClassVar[str] = "The batch job's id (a UUID)."
    partial_results: ClassVar[bool] = True
    mapping: ClassVar[RowMapping | None] = MAPPING
    # its lines are OpenAI's: a load without --as suggests openai-batch, whose mapping is this
    result_keys: ClassVar[tuple[frozenset[str], ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    # a batch takes minutes to its 24 h default timeout
    poll_floor: ClassVar[float] = 10.0
    poll_cap: ClassVar[float] = 60.0
    expired_hint: ClassVar[str] = "it did not finish within its timeout (timeout_hours)"
    states: ClassVar[dict[str, State]] = {
        "queued": "running",
        "running": "running",
        "cancellation_requested": "running",
        "success": "succeeded",
        "failed": "failed",
        "timeout_exceeded": "expired",
        "cancelled": "cancelled",
    }

    def job_path(self, job: Job) -> str:
        return f"/v1/batch/jobs/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("id")
        return Job(value) if isinstance(value, str) and value else None

    def counts(self, payload: Payload) -> dict[str, int] | None:
        found = {ours: as_count(payload.get(theirs)) for theirs, ours in _COUNTS.items()}
        return {k: v for k, v in found.items() if v is not None} or None

    def failure(self, payload: Payload, what: str) -> str:
        errors = payload.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        text = error_text(first) if isinstance(first, dict) else error_text(payload)
        return f"{what} failed (status 'FAILED')" + (f": {text}" if text else "")

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        found = _files(payload)
        if found is None:
            raise ResolveError(f"{what} succeeded, but has neither an output nor an error file")
        return found

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        return _files(payload)


def _files(payload: Payload) -> Download | None:
    """The output file, then the error file, as one load of `total_requests` rows."""
    ids = [payload.get(k) for k in ("output_file", "error_file")]
    paths = [f"/v1/files/{quoted(i)}/content" for i in ids if isinstance(i, str) and i]
    if not paths:
        return None
    first, *rest = paths
    then = tuple(Download(p, "jsonl", mapping=MAPPING) for p in rest)
    count = as_count(payload.get("total_requests"))
    return Download(first, "jsonl", count=count, mapping=MAPPING, then=then)

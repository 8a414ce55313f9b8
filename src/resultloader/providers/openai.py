"""OpenAI Batch: `GET /batches/{id}` with `Authorization: Bearer <OPENAI_API_KEY>`.

A batch ends `completed` with an `output_file_id` (the requests that got an answer) and maybe an
`error_file_id` (those that failed before one); both are JSONL read through the API itself,
`GET /files/{id}/content`, so the key goes with them. A batch that expired or was cancelled may
still have an output file with what finished: loaded only on request (`--partial`). The base URL
ends in `/v1`, as the OpenAI SDK reads `OPENAI_BASE_URL`.
"""

from __future__ import annotations

from typing import ClassVar

from .._columns import Column
from .._errors import ResolveError
from .._mapping import RowMapping, When
from .base import Job, Listing, Payload, Provider, State, error_text, quoted, register
from .location import Download, Location, as_count

# `id` = custom_id; `output` = the answer's body when its status code is 2xx; a failed
# request's body (its `error`: message, type, param, code) is kept in `extra`, as is an error
# file line's `error`
MAPPING = RowMapping(
    key="custom_id",
    output="response.body",
    output_when=When("response.status_code", between=(200, 299)),
    keep=("id", "response.status_code", "response.request_id", "error"),
    otherwise_keep=("response.body",),
    layout=(
        "id",
        "custom_id",
        "response.status_code",
        "response.request_id",
        "response.body",
        "error",
    ),
)
# Chat Completions (`choices`) and Responses (`output` items) bodies alike
COLUMNS = (
    Column(
        "status",
        sql="""CASE WHEN output IS NOT NULL THEN 'succeeded'
            WHEN extra->>'$.error.code' = 'batch_expired' THEN 'expired'
            WHEN extra->>'$.error.code' = 'batch_cancelled' THEN 'cancelled'
            ELSE 'errored' END""",
    ),
    Column("model", paths=("output.model",)),
    Column(
        "text",
        paths=(
            "output.choices[0].message.content",
            "output.output[*].content[*].text",
            "output.choices[0].text",
        ),
    ),
    Column(
        "finish_reason",
        paths=("output.choices[0].finish_reason", "output.incomplete_details.reason"),
    ),
    Column("input_tokens", "bigint", ("output.usage.prompt_tokens", "output.usage.input_tokens")),
    Column(
        "output_tokens",
        "bigint",
        ("output.usage.completion_tokens", "output.usage.output_tokens"),
    ),
    Column("total_tokens", "bigint", ("output.usage.total_tokens",)),
    Column("error_type", paths=("extra.response.body.error.type", "extra.error.code")),
    Column("error_message", paths=("extra.response.body.error.message", "extra.error.message")),
)


@register
class OpenAIBatch(Provider):
    name: ClassVar[str] = "openai-batch"
    brand: ClassVar[str] = "OpenAI Batch"
    title: ClassVar[str] = "An OpenAI Batch: its output and error files, keyed by custom_id."
    base_url: ClassVar[str] = "https://api.openai.com/v1"
    key_env: ClassVar[str] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str] = "OPENAI_BASE_URL"
    auth_header: ClassVar[str] = "Authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    noun: ClassVar[str] = "batch"
    job_flag: ClassVar[str] = "--batch-id"
    job_help: ClassVar[str] = "The batch's id (batch_...)."
    partial_results: ClassVar[bool] = True
    listing: ClassVar[Listing | None] = Listing("/batches", cursor="after", limit=100)
    mapping: ClassVar[RowMapping | None] = MAPPING
    result_keys: ClassVar[tuple[frozenset[str], ...]] = (
        frozenset({"custom_id", "response"}),
        frozenset({"custom_id", "error"}),
    )
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    # a batch takes minutes to its 24 h window: no need to ask more than every 10 s to a minute
    poll_floor: ClassVar[float] = 10.0
    poll_cap: ClassVar[float] = 60.0
    expired_hint: ClassVar[str] = "it did not finish within its completion window"
    states: ClassVar[dict[str, State]] = {
        "validating": "running",
        "in_progress": "running",
        "finalizing": "running",
        "cancelling": "running",
        "completed": "succeeded",
        "failed": "failed",
        "expired": "expired",
        "cancelled": "cancelled",
    }

    def job_path(self, job: Job) -> str:
        return f"/batches/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("id")
        return Job(value) if isinstance(value, str) and value.startswith("batch") else None

    def counts(self, payload: Payload) -> dict[str, int] | None:
        found = payload.get("request_counts")
        if not isinstance(found, dict):
            return None
        counts = {k: as_count(found.get(k)) for k in ("total", "completed", "failed")}
        tally = {"succeeded" if k == "completed" else k: v for k, v in counts.items()}
        return {k: v for k, v in tally.items() if v is not None} or None

    def failure(self, payload: Payload, what: str) -> str:
        errors = payload.get("errors")
        data = errors.get("data") if isinstance(errors, dict) else None
        text = error_text(data[0]) if isinstance(data, list) and data else error_text(payload)
        return f"{what} failed (status 'failed')" + (f": {text}" if text else "")

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        found = _files(payload)
        if found is None:
            raise ResolveError(f"{what} completed, but has neither an output nor an error file")
        return found

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        if self.state(payload) == "failed":  # failed validation: nothing ran
            return None
        return _files(payload)


def _files(payload: Payload) -> Download | None:
    """The output file, then the error file, as one load of `total` rows."""
    ids = [payload.get(k) for k in ("output_file_id", "error_file_id")]
    parts = [
        Download(f"/files/{quoted(i)}/content", format="jsonl", mapping=MAPPING)
        for i in ids
        if isinstance(i, str) and i
    ]
    if not parts:
        return None
    counts = payload.get("request_counts")
    total = as_count(counts.get("total")) if isinstance(counts, dict) else None
    first, *rest = parts
    return Download(first.url, "jsonl", count=total, mapping=MAPPING, then=tuple(rest))

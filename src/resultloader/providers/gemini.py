"""Gemini Batch: `GET /v1beta/batches/{id}` with `x-goog-api-key: <GEMINI_API_KEY>`.

The status is an operation whose `metadata.state` is `BATCH_STATE_*` (the google-genai SDK shows
it as `JOB_STATE_*`; both are accepted, e.g. in a saved status). A batch of inline requests ends
with inline responses (`metadata.output.inlinedResponses.inlinedResponses`), one of a JSONL input
file with a results file (`metadata.output.responsesFile`), downloaded through the API at
`/v1beta/{file}:download?alt=media` as the google-genai SDK does (the REST docs also show a
`/download/` prefix), so the key goes with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._columns import Column
from .._errors import ResolveError
from .._mapping import RowMapping
from .base import Job, Payload, Provider, State, quoted, register
from .location import Download, Inline, Location

MAPPING = RowMapping(key="key", output="response", keep=("error", "status"))
COLUMNS = (
    Column(
        "status",
        sql="""CASE WHEN output IS NOT NULL THEN 'succeeded'
            WHEN extra->>'$.error.status' = 'CANCELLED' THEN 'cancelled'
            WHEN extra->>'$.error.status' = 'DEADLINE_EXCEEDED' THEN 'expired'
            ELSE 'errored' END""",
    ),
    Column("model", paths=("output.modelVersion",)),
    Column("text", paths=("output.candidates[0].content.parts[*].text",)),
    Column("finish_reason", paths=("output.candidates[0].finishReason",)),
    Column("input_tokens", "bigint", ("output.usageMetadata.promptTokenCount",)),
    Column("output_tokens", "bigint", ("output.usageMetadata.candidatesTokenCount",)),
    Column("total_tokens", "bigint", ("output.usageMetadata.totalTokenCount",)),
    Column("error_type", paths=("extra.error.status", "extra.error.code")),
    Column("error_message", paths=("extra.error.message",)),
)
_STATES: dict[str, State] = {
    "pending": "running",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}


@register
class GeminiBatch(Provider):
    name: ClassVar[str] = "gemini-batch"
    brand: ClassVar[str] = "Gemini Batch"
    title: ClassVar[str] = "A Gemini Batch: inline responses or its results file, keyed by key."
    base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    key_env: ClassVar[str] = "GEMINI_API_KEY"
    base_url_env: ClassVar[str] = "GEMINI_BASE_URL"
    auth_header: ClassVar[str] = "x-goog-api-key"
    noun: ClassVar[str] = "batch"
    job_flag: ClassVar[str] = "--batch-name"
    job_help: ClassVar[str] = "The batch's name (batches/...)."
    # the SDK polls operations from 1 s up to 20 s; a batch takes minutes to 24 h
    mapping: ClassVar[RowMapping | None] = MAPPING
    result_keys: ClassVar[tuple[frozenset[str], ...]] = (
        frozenset({"key", "response"}),
        frozenset({"key", "error"}),
    )
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    poll_floor: ClassVar[float] = 5.0
    poll_cap: ClassVar[float] = 60.0
    states: ClassVar[dict[str, State]] = {
        f"{prefix}_state_{name}": state
        for prefix in ("batch", "job")
        for name, state in _STATES.items()
    }

    def job_path(self, job: Job) -> str:
        return f"/v1beta/batches/{quoted(job.id.removeprefix('batches/'))}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("name")
        return Job(value) if isinstance(value, str) and value.startswith("batches/") else None

    def raw_status(self, payload: Payload) -> str:
        metadata = payload.get("metadata")
        value = metadata.get("state") if isinstance(metadata, Mapping) else payload.get("state")
        if not isinstance(value, str):
            raise ResolveError(
                f"{self.name}: the status payload has no 'metadata.state'; is it a Gemini "
                "batch operation?"
            )
        return value

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        metadata = payload.get("metadata")
        output = metadata.get("output") if isinstance(metadata, Mapping) else None
        if not isinstance(output, Mapping):
            raise ResolveError(f"{what} succeeded, but its status has no `metadata.output`")
        name = output.get("responsesFile")
        if isinstance(name, str) and name.startswith("files/"):
            path = f"/v1beta/files/{quoted(name.removeprefix('files/'))}:download"
            return Download(f"{path}?alt=media", format="jsonl", mapping=MAPPING)
        inline = output.get("inlinedResponses")
        found = inline.get("inlinedResponses") if isinstance(inline, Mapping) else None
        if isinstance(found, list):
            return Inline([_inline_row(i, item) for i, item in enumerate(found)])
        raise ResolveError(f"{what} succeeded, but names neither a results file nor responses")


def _inline_row(position: int, item: Any) -> dict[str, Any]:
    """id = `metadata.key` where the request had one, else its 0-based position."""
    item = item if isinstance(item, Mapping) else {"response": item}
    metadata = item.get("metadata")
    key = metadata.get("key") if isinstance(metadata, Mapping) else None
    row: dict[str, Any] = {"id": key if key is not None else str(position)}
    row["output"] = item.get("response")
    if item.get("error") is not None:
        row["error"] = item["error"]
    return row

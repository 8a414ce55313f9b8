"""Anthropic Message Batches: `GET /v1/messages/batches/{id}` with `x-api-key` and
`anthropic-version: 2023-06-01`.

A batch `ended` has a `results_url` on the API's own host (it needs the same two headers): JSONL
lines `{custom_id, result: {type: succeeded, message} | {type: errored, error} | {type: canceled}
| {type: expired}}`. An ended batch in which no request succeeded is reported by its counts as
failed, cancelled or expired; its results file (each line's reason) loads with `--partial`.
"""

from __future__ import annotations

from typing import ClassVar

from .._columns import Column
from .._errors import ResolveError
from .._mapping import RowMapping, When
from .base import Job, Listing, Payload, Provider, State, quoted, register
from .location import Download, Location, as_count, download_url

MAPPING = RowMapping(
    key="custom_id",
    output="result.message",
    output_when=When("result.type", equals=("succeeded",)),
    keep=("result.type", "result.error"),
)
COLUMNS = (
    Column(
        "status",
        sql="""CASE extra->>'$.result.type' WHEN 'succeeded' THEN 'succeeded'
            WHEN 'canceled' THEN 'cancelled' WHEN 'expired' THEN 'expired'
            ELSE 'errored' END""",
    ),
    Column("model", paths=("output.model",)),
    Column("text", paths=("output.content[*].text",)),
    Column("finish_reason", paths=("output.stop_reason",)),
    Column("input_tokens", "bigint", ("output.usage.input_tokens",)),
    Column("output_tokens", "bigint", ("output.usage.output_tokens",)),
    Column(
        "total_tokens",
        "bigint",
        sql="""TRY_CAST(output->>'$.usage.input_tokens' AS BIGINT)
            + TRY_CAST(output->>'$.usage.output_tokens' AS BIGINT)""",
    ),
    # an errored result's error is the API's error body: {type: error, error: {type, message}}
    Column("error_type", paths=("extra.result.error.error.type", "extra.result.error.type")),
    Column(
        "error_message",
        paths=("extra.result.error.error.message", "extra.result.error.message"),
    ),
)
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


@register
class AnthropicBatch(Provider):
    name: ClassVar[str] = "anthropic-batch"
    brand: ClassVar[str] = "Anthropic Message Batch"
    title: ClassVar[str] = "An Anthropic Message Batch: its results, keyed by custom_id."
    base_url: ClassVar[str] = "https://api.anthropic.com"
    key_env: ClassVar[str] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str] = "ANTHROPIC_BASE_URL"
    auth_header: ClassVar[str] = "x-api-key"
    headers: ClassVar[dict[str, str]] = {"anthropic-version": "2023-06-01"}
    status_field: ClassVar[str] = "processing_status"
    noun: ClassVar[str] = "batch"
    job_flag: ClassVar[str] = "--batch-id"
    job_help: ClassVar[str] = "The batch's id (msgbatch_...)."
    partial_results: ClassVar[bool] = True
    listing: ClassVar[Listing | None] = Listing(
        "/v1/messages/batches", cursor="after_id", limit=1000
    )
    # most batches end within the hour (24 h at most): every 10 s, backing off to a minute
    mapping: ClassVar[RowMapping | None] = MAPPING
    result_keys: ClassVar[tuple[frozenset[str], ...]] = (frozenset({"custom_id", "result"}),)
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    poll_floor: ClassVar[float] = 10.0
    poll_cap: ClassVar[float] = 60.0
    expired_hint: ClassVar[str] = "no request finished within 24 hours"
    states: ClassVar[dict[str, State]] = {
        "in_progress": "running",
        "canceling": "running",
        "ended": "succeeded",
    }

    def job_path(self, job: Job) -> str:
        return f"/v1/messages/batches/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("id")
        return Job(value) if isinstance(value, str) and value else None

    def counts(self, payload: Payload) -> dict[str, int] | None:
        found = payload.get("request_counts")
        if not isinstance(found, dict):
            return None
        counts = {k: as_count(found.get(k)) for k in _COUNTS}
        return {k: v for k, v in counts.items() if v is not None} or None

    def state(self, payload: Payload) -> State:
        """`ended` with no request succeeded: failed, expired or cancelled, by the counts."""
        state = super().state(payload)
        counts = self.counts(payload) or {}
        if state != "succeeded" or counts.get("succeeded", 0) or not counts:
            return state
        if counts.get("errored"):
            return "failed"
        return "expired" if counts.get("expired") else "cancelled"

    def failure(self, payload: Payload, what: str) -> str:
        counts = self.counts(payload) or {}
        tally = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        return f"{what} ended with no request succeeded ({tally})"

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        found = self.partial_location(payload, what)
        if found is None:
            raise ResolveError(f"{what} ended, but its status has no `results_url`")
        return found

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        if not payload.get("results_url"):
            return None
        url = download_url(payload["results_url"], what)
        return Download(url, format="jsonl", count=_total(payload), mapping=MAPPING)


def _total(payload: Payload) -> int | None:
    counts = payload.get("request_counts")
    if not isinstance(counts, dict):
        return None
    found = [as_count(counts.get(k)) for k in _COUNTS]
    return sum(n for n in found if n is not None)

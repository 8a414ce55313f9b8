"""Pulse document extraction: `GET /job/{job_id}` with `x-api-key: <PULSE_API_KEY>`.

A completed job's `result` is the extraction, inline, or (at 5 MB and more) a
`{"is_url": true, "url": ...}` pointer to the same JSON document. Either way it lands as one row
whose `id` is the job id and whose `output` is the whole result; with an items path, the items of
that array become the rows instead. The pointer is a presigned S3 URL or a Pulse proxy URL on the
API's own host, which needs the key, is single-use and cannot be refreshed by polling again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from .._errors import ResolveError
from .base import Client, Job, Payload, Provider, State, quoted, register
from .location import Download, Inline, Location, download_url, same_origin


@register
class Pulse(Provider):
    """Items are keyed by their --key field (id). Keyed by a field such as `page`, two jobs'
    items overwrite each other in one table (the last load wins): use --index-ids, or a
    --table per job."""

    name: ClassVar[str] = "pulse"
    title: ClassVar[str] = (
        "A Pulse extraction: the whole result as one row keyed by the job id, or with "
        "--items-path, the items of that array as rows."
    )
    job_help: ClassVar[str] = "The id the async extraction returned."
    index_ids: ClassVar[bool] = True
    base_url: ClassVar[str] = "https://api.runpulse.com"
    key_env: ClassVar[str] = "PULSE_API_KEY"
    base_url_env: ClassVar[str] = "PULSE_BASE_URL"
    auth_header: ClassVar[str] = "x-api-key"
    noun: ClassVar[str] = "job"
    poll_floor: ClassVar[float] = 2.0  # "poll with exponential backoff"
    poll_cap: ClassVar[float] = 30.0
    expired_hint: ClassVar[str] = (
        "its retention window passed and the output was purged; run the extraction again"
    )
    stale_link_hint: ClassVar[str] = (
        "a Pulse proxy link is single-use and expires an hour after the job completed, so it "
        "cannot be fetched again: run the extraction again"
    )
    states: ClassVar[dict[str, State]] = {
        "pending": "running",
        "processing": "running",
        "completed": "succeeded",
        "failed": "failed",
        "canceled": "cancelled",  # the docs' spelling
        "cancelled": "cancelled",  # the OpenAPI enum's
        "expired": "expired",
    }

    def job_path(self, job: Job) -> str:
        return f"/job/{quoted(job.id)}"

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        result = payload.get("result")
        if result is None:
            raise ResolveError(f"{what} completed, but its status has no `result`")
        if isinstance(result, Mapping) and result.get("is_url") is True:
            url = download_url(result.get("url"), what)
            return Download(url, format="json", document_id=job_id or _no_id(what))
        if items_path:
            return Inline(_items(result, items_path, what))
        row_id = job_id or _no_id(what)
        return Inline([{"id": row_id, "output": result}], document_id=row_id)

    def can_refresh(self, client: Client, download: Download) -> bool:
        # the proxy URL is single-use and expires an hour after completion: asking again
        # returns the same dead link; a presigned S3 URL may be reissued
        return not same_origin(download.url, client.base_url)


def _no_id(what: str) -> NoReturn:
    raise ResolveError(f"{what}: the status payload has no `job_id`; pass the job id")


def _items(result: Any, items_path: str, what: str) -> list[Any]:
    """The array at dotted `items_path` inside the inline result."""
    node = result
    for part in [p for p in items_path.split(".") if p]:
        if not isinstance(node, Mapping) or part not in node:
            raise ResolveError(f"{what}: the result has no items at {items_path!r}")
        node = node[part]
    if not isinstance(node, list):
        raise ResolveError(f"{what}: {items_path!r} in the result is not an array")
    return node

"""SafetyKit: data requests (`GET /v1/data/{namespace}/requests/{requestId}`) and batches
(`GET /v1/batches/{batch_id}`), both with `Authorization: Bearer <SAFETYKIT_API_KEY>`.

Polling guidance from the docs: every 3-10 s, stop on a terminal status.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from .._columns import Column
from .._errors import ResolveError
from .base import Client, Job, Option, Payload, Provider, State, error_text, quoted, register
from .location import Download, Inline, Location, as_count, download_url, parse_time

if TYPE_CHECKING:
    import requests


# The inline-output refusal: 413 according to a secondary source, so also recognise the message.
_REFUSAL = re.compile(r"download|too large|exceed|5 ?mib|size limit", re.IGNORECASE)


class _SafetyKit(Provider):
    base_url: ClassVar[str] = "https://api.safetykit.com"
    key_env: ClassVar[str] = "SAFETYKIT_API_KEY"
    base_url_env: ClassVar[str] = "SAFETYKIT_BASE_URL"
    auth_header: ClassVar[str] = "Authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    poll_floor: ClassVar[float] = 3.0
    poll_cap: ClassVar[float] = 10.0


# a decision: `output` is {actions: [{action, ...}], labels: [{label}], fields: {}} or null
DECISION_COLUMNS = (
    Column(
        "flagged",
        "boolean",
        sql="CASE WHEN output IS NOT NULL "
        "THEN coalesce(json_array_length(output, '$.labels'), 0) > 0 END",
    ),
    Column("labels", "json", ("output.labels[*].label",)),
    Column("actions", "json", ("output.actions[*].action",)),
)


@register
class SafetyKitData(_SafetyKit):
    """Add requests carry their rows inline in `data`; import requests give a JSONL `data_url`
    (with `data_count` and `data_expires_at`). The two shapes are told apart by `data_url`."""

    columns: ClassVar[tuple[Column, ...]] = DECISION_COLUMNS
    name: ClassVar[str] = "safetykit"
    title: ClassVar[str] = (
        "A SafetyKit data request: inline rows (add) or the JSONL data_url (import)."
    )
    noun: ClassVar[str] = "request"
    needs_namespace: ClassVar[bool] = True
    job_flag: ClassVar[str] = "--request-id"
    job_help: ClassVar[str] = "The request id the Add/Import call returned."
    options: ClassVar[tuple[Option, ...]] = (
        Option("--namespace", "namespace", "The namespace the data was sent to."),
    )
    states: ClassVar[dict[str, State]] = {
        "queued": "running",
        "uploading": "running",
        "ingesting": "running",
        "succeeded": "succeeded",
        "failed": "failed",
    }

    def job_path(self, job: Job) -> str:
        return f"/v1/data/{quoted(job.namespace or '')}/requests/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        request, namespace = payload.get("request_id"), payload.get("namespace")
        if isinstance(request, str) and request and isinstance(namespace, str) and namespace:
            return Job(request, namespace)
        return None

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        if payload.get("data_url") is not None:
            return Download(
                download_url(payload["data_url"], what),
                format="jsonl",
                expires_at=parse_time(payload.get("data_expires_at")),
                count=as_count(payload.get("data_count")),
            )
        rows = payload.get("data")
        if isinstance(rows, list):
            return Inline(rows)
        raise ResolveError(f"{what} succeeded, but its status has neither `data` nor `data_url`")

    def fetch_status(self, client: Client, job: Job) -> dict[str, Any]:
        what = self.describe(job)
        response = client.get(self.job_path(job), what)
        if _refused_inline(response):
            # over the 5 MiB inline limit: the results are ready, behind the download endpoint
            response.close()
            return self._download_payload(client, job)
        return client.decode(response, what)

    def refresh(self, client: Client, job: Job, stale: Download) -> Download:
        # the download endpoint answers with a fresh URL for add and import requests alike
        location = self.resolve(self._download_payload(client, job), job_id=job.id)
        if not isinstance(location, Download):
            raise ResolveError(f"{self.describe(job)}: the download endpoint gave no URL")
        return location

    def _download_payload(self, client: Client, job: Job) -> dict[str, Any]:
        path = f"{self.job_path(job)}/results/download-url"
        found = client.get_json(path, self.describe(job))
        found.setdefault("status", "succeeded")  # the endpoint only answers for finished work
        found.setdefault("namespace", job.namespace)
        found.setdefault("request_id", job.id)
        return found


def _refused_inline(response: requests.Response) -> bool:
    if response.status_code == 413:
        return True
    if response.status_code < 400 or response.status_code in (401, 403, 404, 429):
        return False
    return bool(_REFUSAL.search(response.text[:2000]))


@register
class SafetyKitBatch(_SafetyKit):
    """A batch of decisions; the results are a CSV file at `download_url` once `SUCCESS`."""

    name: ClassVar[str] = "safetykit-batch"
    title: ClassVar[str] = "A SafetyKit batch: its CSV download, keyed by the --key column (id)."
    noun: ClassVar[str] = "batch"
    job_flag: ClassVar[str] = "--batch-id"
    job_help: ClassVar[str] = "The batch id."
    status_field: ClassVar[str] = "batch_status"
    states: ClassVar[dict[str, State]] = {
        "waiting_for_upload": "running",
        "pending": "running",
        "success": "succeeded",
        "error": "failed",
        "cancelled": "cancelled",
        "canceled": "cancelled",
    }

    def job_path(self, job: Job) -> str:
        return f"/v1/batches/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("batch_id")
        return Job(value) if isinstance(value, str) and value else None

    def counts(self, payload: Payload) -> dict[str, int] | None:
        found = {
            name: as_count(payload.get(f"{field}_count"))
            for name, field in (
                ("total", "batch"),
                ("succeeded", "success"),
                ("errors", "error"),
                ("pending", "pending"),
                ("cancelled", "cancelled"),
            )
        }
        counts = {k: v for k, v in found.items() if v is not None}
        return counts or None

    def failure(self, payload: Payload, what: str) -> str:
        counts = self.counts(payload) or {}
        tally = f"{counts.get('errors', '?')} of {counts.get('total', '?')} decisions failed"
        text = error_text(payload)
        return f"{what} ended in {self.raw_status(payload)} ({tally})" + (
            f": {text}" if text else ""
        )

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        return Download(
            download_url(payload.get("download_url"), what),
            format="csv",
            count=as_count(payload.get("batch_count")),
        )

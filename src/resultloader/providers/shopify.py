"""Shopify bulk operations: the GraphQL Admin API at
`https://{shop}/admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`.

The status is `bulkOperation(id:)` (from API version 2026-01), or without an id the shop's
`currentBulkOperation(type: QUERY)`. A COMPLETED operation's `url` is a presigned JSONL download
(null when the query matched nothing) that expires after 7 days and is renewed by asking again; a
FAILED one may leave a `partialDataUrl`, loaded with `--partial`. Each line is one object keyed
by its `id`; a nested connection's lines carry `__parentId`, kept in `extra`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .._columns import Column
from .._errors import PollError, ResolveError
from .._mapping import RowMapping
from .base import Client, Job, Option, Payload, Provider, State, register
from .location import Download, Inline, Location, as_count, download_url

MAPPING = RowMapping(key="id", output="*", keep=("__parentId",))
COLUMNS = (
    # `__typename` when the query asked for it, else the type the GID names
    Column(
        "typename",
        sql="""coalesce(output->>'$.__typename',
            nullif(regexp_extract(id, '^gid://shopify/([^/?]+)/', 1), ''))""",
    ),
    Column("parent_id", paths=("extra.__parentId",)),
)
_FIELDS = "id status errorCode objectCount rootObjectCount fileSize url partialDataUrl"
_BY_ID = f"query($id: ID!) {{ bulkOperation(id: $id) {{ {_FIELDS} }} }}"
_CURRENT = f"{{ currentBulkOperation(type: QUERY) {{ {_FIELDS} }} }}"
_SHOP = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_VERSION = re.compile(r"\d{4}-\d{2}|unstable")


@register
class ShopifyBulk(Provider):
    name: ClassVar[str] = "shopify-bulk"
    brand: ClassVar[str] = "Shopify bulk operation"
    title: ClassVar[str] = "A Shopify bulk query operation: its JSONL, keyed by each line's id."
    base_url: ClassVar[str] = "https://{shop}"
    key_env: ClassVar[str] = "SHOPIFY_ACCESS_TOKEN"
    base_url_env: ClassVar[str] = "SHOPIFY_BASE_URL"
    auth_header: ClassVar[str] = "X-Shopify-Access-Token"
    noun: ClassVar[str] = "bulk operation"
    job_flag: ClassVar[str] = "--operation-id"
    job_help: ClassVar[str] = (
        "The operation's id (gid://shopify/BulkOperation/N) [default: the shop's current "
        "query operation]."
    )
    job_required: ClassVar[bool] = False
    mapping: ClassVar[RowMapping | None] = MAPPING
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    options: ClassVar[tuple[Option, ...]] = (
        Option("--shop", "shop", "The shop (NAME.myshopify.com).", metavar="DOMAIN"),
        Option("--api-version", "api_version", "The Admin API version.", "2026-01", "VERSION"),
    )
    partial_results: ClassVar[bool] = True
    # Shopify's own examples poll a bulk operation every few seconds; large ones take hours
    poll_floor: ClassVar[float] = 5.0
    poll_cap: ClassVar[float] = 60.0
    stale_link_hint: ClassVar[str] = "the links last 7 days; run the bulk query again"
    states: ClassVar[dict[str, State]] = {
        "created": "running",
        "running": "running",
        "canceling": "running",
        "completed": "succeeded",
        "failed": "failed",
        "canceled": "cancelled",
        "expired": "expired",
    }

    def api_base(self, job: Job, given: str | None) -> str:
        shop, version = job.params.get("shop"), job.params.get("api_version") or "2026-01"
        if not _VERSION.fullmatch(version):
            raise ValueError(f"{self.name}: --api-version is YYYY-MM, not {version!r}")
        if given:
            return f"{given.rstrip('/')}/admin/api/{version}"
        if not shop or not _SHOP.fullmatch(shop.lower()):
            raise ValueError(f"{self.name}: give the shop as --shop NAME.myshopify.com")
        return f"https://{shop.lower()}/admin/api/{version}"

    def job_path(self, job: Job) -> str:
        return "/graphql.json"

    def describe(self, job: Job) -> str:
        return f"{self.name} {job}" if job.id else f"{self.name} current query operation"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("id")
        return Job(value) if isinstance(value, str) and value else None

    def counts(self, payload: Payload) -> dict[str, int] | None:
        found = as_count(payload.get("objectCount"))
        return None if found is None else {"objects": found}

    def looks_like(self, line: Mapping[str, Any]) -> bool:
        return str(line.get("id", "")).startswith("gid://shopify/")

    def fetch_status(self, client: Client, job: Job) -> dict[str, Any]:
        what = self.describe(job)
        query = {"query": _BY_ID, "variables": {"id": job.id}} if job.id else {"query": _CURRENT}
        answer = client.post_json(self.job_path(job), query, what)
        if answer.get("errors"):
            raise PollError(f"{what}: the API refused the query: {_first_error(answer)}")
        data = answer.get("data")
        node = data.get("bulkOperation" if job.id else "currentBulkOperation") if data else None
        if not isinstance(node, dict):
            raise ResolveError(f"{what}: no such bulk operation")
        return node

    def failure(self, payload: Payload, what: str) -> str:
        code = payload.get("errorCode")
        return f"{what} failed (status 'FAILED')" + (f": {code}" if code else "")

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        if payload.get("url") is None:  # the query matched no object: Shopify makes no file
            return Inline([])
        count = as_count(payload.get("objectCount"))
        url = download_url(payload["url"], what)
        return Download(url, format="jsonl", count=count, mapping=MAPPING)

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        if not payload.get("partialDataUrl"):
            return None
        url = download_url(payload["partialDataUrl"], what)
        return Download(url, format="jsonl", mapping=MAPPING)


def _first_error(answer: Mapping[str, Any]) -> str:
    errors = answer.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else errors
    text = first.get("message") if isinstance(first, Mapping) else first
    return " ".join(str(text).split())[:300]

"""Listing a provider's jobs, newest first, for `ingest NAME --since DATE` (reconciling).

A provider that can list declares a `Listing` (its list endpoint and cursor parameter); OpenAI
(`GET /batches?after=`) and Anthropic (`GET /v1/messages/batches?after_id=`) page alike: each
page has `data` (the jobs' full status objects, newest first), `has_more` and `last_id`, the
cursor of the next page. Listing stops at the first job created before `since`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .._errors import ResolveError
from .._location import parse_time
from ..parse._rows import RawNumber

if TYPE_CHECKING:
    from ._client import ApiClient
    from .base import Provider


@dataclass(frozen=True)
class Listing:
    """`GET path?limit=N&CURSOR=last_id`: the list endpoint of a provider's jobs."""

    path: str
    cursor: str  # the query parameter taking the previous page's `last_id`
    limit: int
    created_field: str = "created_at"  # Unix seconds or an RFC 3339 time


def list_jobs(
    provider: Provider, listing: Listing, client: ApiClient, since: datetime
) -> Iterator[dict[str, Any]]:
    """The status objects of the jobs created at or after `since`, newest first."""
    what = f"{provider.name}: listing {provider.noun}es"
    after: str | None = None
    while True:
        query: dict[str, Any] = {"limit": listing.limit}
        if after is not None:
            query[listing.cursor] = after
        page = client.get_json(f"{listing.path}?{urlencode(query)}", what)
        data = page.get("data")
        if not isinstance(data, list) or not all(isinstance(job, dict) for job in data):
            raise ResolveError(f"{what}: the answer has no `data` list of {provider.noun}es")
        for job in data:
            if created_at(job, listing.created_field, what) < since:
                return  # newest first: the rest are older still
            yield job
        last = page.get("last_id") or (data[-1].get("id") if data else None)
        if not page.get("has_more") or not data or not isinstance(last, str) or last == after:
            return
        after = last


def created_at(job: dict[str, Any], field: str, what: str) -> datetime:
    """When the job was created: Unix seconds (OpenAI) or an RFC 3339 time (Anthropic)."""
    value = job.get(field)
    if isinstance(value, (int, float, RawNumber)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc)  # (exact decoding: text)
    moment = parse_time(value)
    if moment is None:
        raise ResolveError(f"{what}: {job.get('id')!r} has no readable {field!r} ({value!r})")
    return moment

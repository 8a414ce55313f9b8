"""Listing a provider's jobs, newest first, for `ingest NAME --since DATE` (reconciling).

A provider that can list declares a `Listing` (its list endpoint and cursor parameter); OpenAI
(`GET /batches?after=`) and Anthropic (`GET /v1/messages/batches?after_id=`) page alike: each
page has `data` (the jobs' full status objects, newest first), `has_more` and `last_id`, the
cursor of the next page. Listing stops at the first job created before `since`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from .._errors import NO_LISTING, ResolveError
from ..parse._rows import RawNumber
from .base import Client, Provider
from .location import parse_time


def list_jobs(provider: Provider, client: Client, since: datetime) -> Iterator[dict[str, Any]]:
    """The status objects of the jobs created at or after `since`, newest first; only for a
    provider that declares its `listing`."""
    listing = provider.listing
    if listing is None:
        raise ValueError(f"{provider.name}: cannot list its {provider.noun}s, {NO_LISTING}")
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

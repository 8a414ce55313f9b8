"""What the Airflow and Dagster integrations share: one ingest or one load of files run for a
scheduler, into a sink built from a target, reported as plain values (XCom, asset metadata)
that carry the id of the load in the sink's ledger (`resultloader history ID`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ._model import LoadOptions, LoadReport
from .pipeline.ingest import ingest
from .pipeline.load import as_sink
from .pipeline.load_many import SourceResult, load_many
from .providers._client import ApiAccess
from .providers.base import Job, Provider, get_provider
from .providers.poll import PollPolicy
from .sinks import Sink
from .sources.download import HttpPolicy

Fields = dict[str, Any]  # a report as JSON-able values
LONGEST_WAIT = 24 * 3600.0  # a job's wait by default: a batch API's window is a day


def the_job(provider: str | Provider, job_id: str, params: Mapping[str, str] | None) -> Job:
    """The job `job_id` names (`NAMESPACE/ID` for a provider that scopes ids by one), with a
    provider's own options (Shopify's `shop`)."""
    return get_provider(provider).job_from_line(job_id.strip(), params=params)


def with_flags(
    options: LoadOptions | None, *, partial: bool = False, provider: str | None = None
) -> LoadOptions:
    """`options` with the flags an operator or asset takes as arguments of its own
    (`--partial`, `--as`): each one given wins over the options'."""
    options = options or LoadOptions()
    if partial:
        options = replace(options, partial=True)
    if provider is not None:
        options = replace(options, provider=get_provider(provider).name)
    return options


def ingest_job(
    provider: str | Provider,
    job: Job,
    target: str,
    table: str,
    options: LoadOptions,
    poll: PollPolicy,
    api: ApiAccess,
    http: HttpPolicy | None = None,
) -> tuple[LoadReport, Fields]:
    """The job's results loaded into `target`: the report, and as fields (raises NotReady
    while it runs with `poll.wait=False`, JobFailed/JobExpired/JobCancelled with the
    provider's reason)."""
    sink = as_sink(target, table)
    report = ingest(provider, job, sink, options, poll, http, api)
    return report, report_fields(report, ledger_id(sink))


def load_files(
    sources: str | list[str],
    target: str,
    table: str,
    options: LoadOptions,
    http: HttpPolicy | None = None,
) -> Fields:
    """Every file (paths, URLs, globs) loaded into `target`, one load each, in order; a source
    committed unchanged before is skipped. The totals, and each source's fields in `loads`."""
    sink = as_sink(target, table)
    loads: list[Fields] = []

    def each(result: SourceResult) -> None:
        loaded = result.outcome == "loaded"
        loads.append({**result.to_dict(), "load_id": ledger_id(sink) if loaded else None})

    load_many(sources, sink, options, each=each, http=http)
    return totals(loads)


def report_fields(report: LoadReport, load_id: str | None) -> Fields:
    return {**report.to_dict(), "load_id": load_id}


def ledger_id(sink: Sink) -> str | None:
    """The id of the sink's latest load in its ledger. The sinks with a ledger (DuckDB, Postgres,
    Delta) keep it from `begin` on; a LoadReport does not carry it."""
    found = getattr(sink, "_load_id", None)
    return found if isinstance(found, str) and found else None


_SUMMED = ("rows_read", "rows_upserted", "rows_unchanged", "bad_rows", "tokens")


def totals(loads: list[Fields]) -> Fields:
    """The loads of many sources added up: counts (None where no load knew it), rows by
    status, the load ids, and how many sources were loaded and skipped."""
    loaded = [load for load in loads if load["outcome"] == "loaded"]
    found: Fields = {name: _sum(load.get(name) for load in loaded) for name in _SUMMED}
    statuses: dict[str, int] = {}
    for load in loaded:
        for status, n in (load.get("statuses") or {}).items():
            statuses[status] = statuses.get(status, 0) + n
    return {
        **found,
        "statuses": statuses or None,
        "load_ids": [load["load_id"] for load in loaded if load["load_id"]],
        "sources_loaded": len(loaded),
        "sources_skipped": sum(1 for load in loads if load["outcome"] == "skipped"),
        "loads": loads,
    }


def _sum(values: Any) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None

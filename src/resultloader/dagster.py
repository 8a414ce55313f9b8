"""resultloader in Dagster (`pip install 'resultloader[dagster]'`).

>>> from dagster import DailyPartitionsDefinition, Definitions, EnvVar
>>> from resultloader.dagster import ResultLoaderResource, ingest_asset, load_asset
>>> answers = ingest_asset("openai-batch", name="answers")          # job_id from run config
>>> exports = load_asset("exports/{partition}/*.jsonl", name="exports", provider="openai-batch",
...                      partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
>>> defs = Definitions(assets=[answers, exports], resources={"resultloader":
...     ResultLoaderResource(into="warehouse.duckdb", api_key=EnvVar("OPENAI_API_KEY"))})

Each materialization carries the load's report as metadata: rows read, upserted, unchanged and
bad, the rows by status and the tokens (a provider's typed columns), and the load's id in the
target's ledger. A job that failed, expired or was cancelled fails the run with the provider's
reason, without retries.
"""

# no `from __future__ import annotations`: Dagster reads the resource's field types at runtime

from collections.abc import Callable
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    ConfigurableResource,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from ._errors import JobCancelled, JobExpired, JobFailed
from ._model import LoadOptions, LoadReport
from ._scheduled import LONGEST_WAIT, Fields, ingest_job, load_files, the_job, with_flags
from .providers._client import ApiAccess
from .providers.base import get_provider
from .providers.poll import PollPolicy
from .sources.download import HttpPolicy

PARTITION = "{partition}"  # in a load_asset's source: the partition's key (a date, daily)


class ResultLoaderResource(ConfigurableResource):  # type: ignore[type-arg]  # it yields itself
    """Where the assets' loads go (`into`: a DuckDB file path, `postgresql://...`,
    `delta:PATH`; `table`), and how to reach the provider's API: `api_key` (give
    `EnvVar("OPENAI_API_KEY")`: the key stays out of the run's config) and `base_url`, else
    the provider's environment variables. `allow_local_urls`: the API's links may point at
    private addresses."""

    into: str = "results.duckdb"
    table: str = "results"
    api_key: str | None = Field(default=None, repr=False)  # nor in str()
    base_url: str | None = None
    allow_local_urls: bool = False

    def ingest(
        self,
        provider: str,
        job_id: str,
        options: LoadOptions | None = None,
        poll: PollPolicy | None = None,
        job_params: dict[str, str] | None = None,
    ) -> tuple[LoadReport, Fields]:
        """Wait for the job to end, then load its results (JobFailed, JobExpired or
        JobCancelled with the provider's reason)."""
        job = the_job(provider, job_id, job_params)
        access = ApiAccess(self.api_key or None, self.base_url or None)
        poll = poll or PollPolicy(timeout=LONGEST_WAIT)
        return ingest_job(
            provider,
            job,
            self.into,
            self.table,
            options or LoadOptions(),
            poll,
            access,
            self._http(),
        )

    def load(self, sources: str | list[str], options: LoadOptions | None = None) -> Fields:
        """Files (paths, URLs, globs) loaded, one load each: the totals and each one's."""
        return load_files(sources, self.into, self.table, options or LoadOptions(), self._http())

    def _http(self) -> HttpPolicy | None:
        return HttpPolicy(allow_local_urls=True) if self.allow_local_urls else None


def ingest_asset(
    provider: str,
    *,
    name: str,
    job_id: str | None = None,
    resource_key: str = "resultloader",
    options: LoadOptions | None = None,
    partial: bool = False,
    poll: PollPolicy | None = None,
    job_params: dict[str, str] | None = None,
    **asset_kwargs: Any,
) -> AssetsDefinition:
    """An asset whose materialization waits for a provider's job and loads its results.

    The job is `job_id`, else the run config's (`ops: {NAME: {config: {job_id: ...}}}`);
    `partial=True` loads what an expired or cancelled job left. `asset_kwargs` go to
    `@asset` (group_name, deps, description...)."""
    prov = get_provider(provider).name
    options = with_flags(options, partial=partial)

    def ingested(context: AssetExecutionContext) -> MaterializeResult[None]:
        resource: ResultLoaderResource = getattr(context.resources, resource_key)
        the_id = job_id or context.op_execution_context.op_config["job_id"]
        try:
            report, fields = resource.ingest(prov, the_id, options, poll, job_params)
        except (JobFailed, JobExpired, JobCancelled) as exc:
            raise Failure(str(exc), allow_retries=False) from None  # retrying cannot help
        context.log.info(report.summary())
        return MaterializeResult(metadata=metadata(fields))

    config = None if job_id else {"job_id": str}
    return _asset(ingested, name, resource_key, config_schema=config, **asset_kwargs)


def load_asset(
    source: str | list[str],
    *,
    name: str,
    provider: str | None = None,
    partitions_def: PartitionsDefinition | None = None,
    resource_key: str = "resultloader",
    options: LoadOptions | None = None,
    **asset_kwargs: Any,
) -> AssetsDefinition:
    """An asset whose materialization loads files (paths, URLs, globs), one load each.

    With `partitions_def` (a `DailyPartitionsDefinition` for daily exports), `{partition}` in
    the source is the partition's key: a backfill loads each day's files. `provider` reads them
    as its result files (`load --as`)."""
    sources = [source] if isinstance(source, str) else list(source)
    if partitions_def is not None and not any(PARTITION in s for s in sources):
        raise ValueError(f"a partitioned load_asset needs {PARTITION} in its source")
    options = with_flags(options, provider=provider)

    def loaded(context: AssetExecutionContext) -> MaterializeResult[None]:
        resource: ResultLoaderResource = getattr(context.resources, resource_key)
        key = context.partition_key if partitions_def is not None else ""
        fields = resource.load([s.replace(PARTITION, key) for s in sources], options)
        for load in fields["loads"]:
            context.log.info(f"{load['source']}: {load['outcome']} (load {load['load_id']})")
        return MaterializeResult(metadata=metadata(fields))

    return _asset(loaded, name, resource_key, partitions_def=partitions_def, **asset_kwargs)


def _asset(
    compute: Callable[[AssetExecutionContext], MaterializeResult[None]],
    name: str,
    resource_key: str,
    **asset_kwargs: Any,
) -> AssetsDefinition:
    made = asset(compute, name=name, required_resource_keys={resource_key}, **asset_kwargs)
    assert isinstance(made, AssetsDefinition)  # given a function, @asset makes the asset
    return made


def metadata(fields: Fields) -> dict[str, MetadataValue]:
    """A report's fields as asset metadata (numbers, text, JSON); unknown ones left out."""
    shown: dict[str, MetadataValue] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, str):
            shown[name] = MetadataValue.text(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            shown[name] = MetadataValue.int(value)
        elif isinstance(value, float):
            shown[name] = MetadataValue.float(value)
        else:
            shown[name] = MetadataValue.json(value)
    return shown


__all__ = ["ResultLoaderResource", "ingest_asset", "load_asset", "metadata"]

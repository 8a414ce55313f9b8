"""`IngestOperator` (a provider's job, deferred while it runs) and `LoadOperator` (files).

Both return the load's report as their XCom (`return_value`): the counts of `LoadReport`
(rows read, upserted, unchanged, bad; the rows by status and the tokens, from a provider's typed
columns) and `load_id`, the load's row in the target's ledger. The target is `into` (a DuckDB
file path, `postgresql://...`, `delta:PATH`) or `into_conn_id` (an Airflow connection, see
hooks.py); the API's key and base URL come from `api_conn_id`, else the provider's environment
variables (OPENAI_API_KEY, OPENAI_BASE_URL...), and are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from .._errors import JobCancelled, JobExpired, JobFailed, NotReady, PollError
from .._model import LoadOptions
from .._scheduled import LONGEST_WAIT, Fields, ingest_job, load_files, the_job, with_flags
from ..providers._client import ApiAccess
from ..providers.base import get_provider
from ..providers.poll import PollPolicy
from ..sources.download import HttpPolicy
from .hooks import api_access, target_of
from .triggers import IngestTrigger


def _target(into: str | None, into_conn_id: str | None) -> str:
    """The target `into` names, or the connection `into_conn_id` (rendered: either may be a
    template)."""
    if into_conn_id:
        return target_of(BaseHook.get_connection(into_conn_id))
    if not into:
        raise ValueError("give the target: into=... or into_conn_id=...")
    return into


def _one_target(into: str | None, into_conn_id: str | None) -> None:
    if (into is None) == (into_conn_id is None):
        raise ValueError(
            "give one target: into= (a DuckDB file path, postgresql://..., delta:PATH) or "
            "into_conn_id= (an Airflow connection)"
        )


class IngestOperator(BaseOperator):
    """Wait for a provider's job, deferred to the triggerer (`IngestTrigger`), then load its
    results into the target on a worker.

    A job already ended is loaded at once. A job that failed, expired or was cancelled fails the
    task with the provider's reason, without retries (`partial=True` loads what an expired or
    cancelled job left, where the API keeps it). `poll` sets the wait between status checks
    (default: the provider's backoff) and its `timeout` (default a day); `options` how to read
    the results (LoadOptions); `job_params` a provider's own options (Shopify's `shop`).
    """

    template_fields: Sequence[str] = ("job_id", "into", "into_conn_id", "table", "api_conn_id")

    def __init__(
        self,
        *,
        provider: str,
        job_id: str,
        into: str | None = None,
        into_conn_id: str | None = None,
        table: str = "results",
        api_conn_id: str | None = None,
        job_params: Mapping[str, str] | None = None,
        options: LoadOptions | None = None,
        partial: bool = False,
        poll: PollPolicy | None = None,
        http: HttpPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_target(into, into_conn_id)
        self.provider = get_provider(provider).name  # the triggerer finds it by name
        self.job_id, self.job_params = job_id, dict(job_params or {})
        self.into, self.into_conn_id, self.table = into, into_conn_id, table
        self.api_conn_id = api_conn_id
        self.options = with_flags(options, partial=partial)
        self.poll = poll or PollPolicy(timeout=LONGEST_WAIT)
        self.http = http

    def execute(self, context: Context) -> Fields:
        return self._load_or_defer()

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Fields:
        """Resumed when the trigger fired: the job ended (loaded now), or its status could not
        be had."""
        if "error" in event:
            raise PollError(event["error"])
        return self._load_or_defer()

    def _load_or_defer(self) -> Fields:
        fields = self._load_if_ended()
        if fields is None:
            self.log.info("%s %s is running: deferred", self.provider, self.job_id)
            # the trigger's own timeout ends the wait with its words; Airflow's is a backstop
            backstop = timedelta(seconds=self.poll.timeout + 3600)
            self.defer(trigger=self._trigger(), method_name="execute_complete", timeout=backstop)
        return fields

    def _load_if_ended(self) -> Fields | None:
        """The results loaded, if the job has ended (one status check); None while it runs."""
        job = the_job(self.provider, self.job_id, self.job_params)
        target = _target(self.into, self.into_conn_id)
        once = PollPolicy(wait=False, timeout=self.poll.timeout)
        try:
            report, fields = ingest_job(
                self.provider,
                job,
                target,
                self.table,
                self.options,
                once,
                self._access(),
                self.http,
            )
        except NotReady:
            return None
        except (JobFailed, JobExpired, JobCancelled) as exc:
            raise AirflowFailException(str(exc)) from None  # retrying cannot help
        self.log.info("%s", report.summary())
        return fields

    def _access(self) -> ApiAccess:
        if self.api_conn_id is None:
            return ApiAccess()  # the provider's environment variables
        return api_access(BaseHook.get_connection(self.api_conn_id))

    def _trigger(self) -> IngestTrigger:
        return IngestTrigger(
            self.provider,
            self.job_id,
            job_params=self.job_params,
            api_conn_id=self.api_conn_id,
            interval=self.poll.interval,
            max_interval=self.poll.max_interval,
            timeout=self.poll.timeout,
            factor=self.poll.factor,
            allow_local_urls=self.http is not None and self.http.allow_local_urls,
        )


class LoadOperator(BaseOperator):
    """Load files (paths, URLs, globs with `*`/`**`, local or s3://) into the target, one load
    each, in order; a file committed unchanged before is skipped. `provider` reads them as that
    provider's result files (`load --as`); `options` as LoadOptions says. The XCom holds the
    totals, `load_ids`, and each source's report in `loads`."""

    template_fields: Sequence[str] = ("source", "into", "into_conn_id", "table")

    def __init__(
        self,
        *,
        source: str | list[str],
        into: str | None = None,
        into_conn_id: str | None = None,
        table: str = "results",
        provider: str | None = None,
        options: LoadOptions | None = None,
        http: HttpPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_target(into, into_conn_id)
        self.source = source
        self.into, self.into_conn_id, self.table = into, into_conn_id, table
        self.options = with_flags(options, provider=provider)
        self.http = http

    def execute(self, context: Context) -> Fields:
        target = _target(self.into, self.into_conn_id)
        fields = load_files(self.source, target, self.table, self.options, self.http)
        for load in fields["loads"]:
            self.log.info("%s: %s (load %s)", load["source"], load["outcome"], load["load_id"])
        self.log.info(
            "%s sources loaded, %s skipped; %s rows read, %s bad",
            fields["sources_loaded"],
            fields["sources_skipped"],
            fields["rows_read"] or 0,
            fields["bad_rows"] or 0,
        )
        return fields

"""`IngestTrigger`: waits in Airflow's triggerer for a provider's job to end.

Each wake-up makes one status check through the provider seam in a worker thread (the API
client's retries, `Retry-After` included, sleep there, never on the triggerer's event loop);
between checks it sleeps on the event loop, by the provider's backoff (providers/poll.py). It
fires once, when the job has ended (however it ended: the operator resumes, checks once more
and loads the results or fails with the provider's reason), or when the status cannot be had.

It is serialised with the connection's id, never the key: the key is read on the triggerer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.providers.common.compat.connection import get_async_connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from .._errors import PollError, ResultLoaderError
from .._scheduled import LONGEST_WAIT, the_job
from ..providers._client import ApiAccess, ApiClient, client_for
from ..providers.base import Job, Provider, get_provider
from ..providers.poll import Clock, JobStatus, PollPolicy, next_delay
from .hooks import api_access


class IngestTrigger(BaseTrigger):
    """Fires `{"state": ..., "status": ...}` when the job has ended, or `{"error": ...}` when its
    status cannot be had (the API refused, or the wait passed `timeout` seconds)."""

    def __init__(
        self,
        provider: str,
        job_id: str,
        *,
        job_params: Mapping[str, str] | None = None,
        api_conn_id: str | None = None,
        interval: float | None = None,
        max_interval: float | None = None,
        timeout: float = LONGEST_WAIT,
        factor: float = 1.5,
        allow_local_urls: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.provider, self.job_id = provider, job_id
        self.job_params = dict(job_params or {})
        self.api_conn_id = api_conn_id
        self.policy = PollPolicy(interval, max_interval, timeout, factor)
        self.allow_local_urls = allow_local_urls

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "provider": self.provider,
                "job_id": self.job_id,
                "job_params": self.job_params,
                "api_conn_id": self.api_conn_id,
                "interval": self.policy.interval,
                "max_interval": self.policy.max_interval,
                "timeout": self.policy.timeout,
                "factor": self.policy.factor,
                "allow_local_urls": self.allow_local_urls,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            prov = get_provider(self.provider)
            job = the_job(prov, self.job_id, self.job_params)
            access = await self._access()
        except (ResultLoaderError, ValueError) as exc:
            yield _event({"error": str(exc)})
            return
        with client_for(prov, job, access, Clock(), self.allow_local_urls) as client:
            yield _event(await self._wait(prov, job, client))

    async def _access(self) -> ApiAccess:
        if self.api_conn_id is None:
            return ApiAccess()  # the provider's environment variables, on the triggerer
        return api_access(await get_async_connection(self.api_conn_id))

    async def _wait(self, prov: Provider, job: Job, client: ApiClient) -> dict[str, Any]:
        """Check, sleep, check, until the job ends: the event's payload."""
        floor, cap = self.policy.bounds(prov)
        rng, started = random.Random(), time.monotonic()
        # the API client's retries wait within what is left of the whole wait
        client.time_left.deadline = started + self.policy.timeout
        checks = 0
        while True:
            checks += 1
            try:
                status = await asyncio.to_thread(self._check, prov, job, client, checks, started)
            except ResultLoaderError as exc:
                return {"error": client.scrub(str(exc))}
            self.log.info("%s", status.line())
            if status.state != "running":
                return {"state": status.state, "status": status.status, "checks": checks}
            left = self.policy.timeout - (time.monotonic() - started)
            if left <= 0:
                return {"error": _timed_out(prov, job, status, self.policy.timeout)}
            delay = next_delay(checks - 1, floor, cap, self.policy.factor, rng)
            await asyncio.sleep(min(delay, left))

    @staticmethod
    def _check(
        prov: Provider, job: Job, client: ApiClient, checks: int, started: float
    ) -> JobStatus:
        """One status check (blocking: run in a thread)."""
        payload = prov.fetch_status(client, job)
        elapsed = time.monotonic() - started
        state, raw = prov.state(payload), prov.raw_status(payload)
        return JobStatus(prov.name, str(job), raw, state, prov.counts(payload), checks, elapsed)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def _timed_out(prov: Provider, job: Job, status: JobStatus, timeout: float) -> str:
    return str(
        PollError(
            f"{prov.describe(job)} is still {status.status!r} after {timeout:g}s; it keeps "
            "running on the API's side: run the task again later, or wait longer (timeout)"
        )
    )

"""`ingest_many`: many jobs of one provider, polled at once, each loaded in its own transaction.

`concurrency` jobs are polled at once, in threads, each with its own client; the clients share
one `Gate`, so that a 429 from the API holds every poller until the time it asked for (a rate
limit is per key). The jobs are loaded in the order they end, one at a time, by this thread:
sinks are not thread-safe, and a DuckDB load is bound by the one writer anyway, so the result
files are read by the same load that writes them, as a single `ingest` reads them (staging them
ahead would copy every row twice). A job already committed in the sink's ledger is skipped, so
a re-run finishes what is left; one that fails is reported and the others go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from .._errors import NO_LISTING, NotReady, ResultLoaderError
from .._http import Clock, Gate
from .._model import LoadOptions, LoadReport
from .._redact import first_line
from ..providers._client import ApiAccess, ApiClient, client_for
from ..providers._listing import list_jobs
from ..providers.base import Job, Provider, get_provider
from ..providers.poll import PollPolicy
from ..sinks import Sink
from ..sources.download import HttpPolicy
from .ingest import _status, load_job, source_name
from .load import SinkLike, as_sink
from .load_many import committed_loads

Outcome = Literal["loaded", "skipped", "failed"]


@dataclass
class JobResult:
    """What became of one job: loaded (with its report), skipped as committed before, or
    failed (with the reason; `not_ready`: it had not ended, under `wait=False`)."""

    job: str
    outcome: Outcome
    report: LoadReport | None = None
    error: str | None = None
    not_ready: bool = False

    def to_dict(self) -> dict[str, Any]:
        counts = self.report.to_dict() if self.report else {}
        return {"job": self.job, "outcome": self.outcome, **counts, "error": self.error}


@dataclass
class JobTally:
    """How many jobs are waiting for a poller, running (polled, or loading), and done."""

    waiting: int = 0
    running: int = 0
    loaded: int = 0
    skipped: int = 0
    failed: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # listed, not loadable (--since)

    def line(self) -> str:
        text = (
            f"{self.waiting} waiting, {self.running} running, {self.loaded} loaded, "
            f"{self.skipped} skipped, {self.failed} failed"
        )
        if self.left_out:
            text += " (left out: " + ", ".join(f"{n} {w}" for w, n in self.left_out.items()) + ")"
        return text


def ingest_many(
    provider: str | Provider,
    jobs: Iterable[str | Job] | str | Job = (),
    sink: SinkLike = None,
    options: LoadOptions | None = None,
    poll: PollPolicy | None = None,
    http: HttpPolicy | None = None,
    api: ApiAccess | None = None,
    *,
    since: datetime | None = None,
    each: Callable[[JobResult], None] | None = None,
    on_progress: Callable[[JobTally], None] | None = None,
) -> list[JobResult]:
    """Poll every job until it ends and load each into `sink` in a transaction of its own.

    `jobs`: ids (for SafetyKit data requests `NAMESPACE/REQUEST_ID`) or `Job`s. `since` (an
    aware datetime) adds every job the provider lists as created since then that has ended with
    results (OpenAI and Anthropic batches; others refuse it). Jobs committed before in the
    sink's ledger are skipped. `poll.concurrency` jobs are polled at once; a 429 holds them all
    for as long as the API asks. A job that fails does not stop the others: every job has a
    `JobResult`, in the order they came to an end, also shown to `each` as it comes;
    `on_progress` sees the counts as they change. `options`, `poll`, `http` and `api` are as
    for `ingest` (the poll timeout bounds each job's wait); `LoadOptions(index_ids=True)` gives
    a keyless item the id JOB_ID/INDEX of its own job.
    """
    prov = get_provider(provider)
    if since is not None and prov.listing is None:
        raise ValueError(f"{prov.name}: cannot list its {prov.noun}s, {NO_LISTING}")
    if since is not None and since.tzinfo is None:
        raise ValueError("since: give an aware datetime (with its time zone)")
    policy = poll or PollPolicy()
    run = _Run(prov, as_sink(sink), options or LoadOptions(), policy, http, api)
    given = [jobs] if isinstance(jobs, (str, Job)) else jobs  # one job, not its characters
    todo = {str(j): j for j in (_as_job(prov, j) for j in given)}
    payloads: dict[str, Mapping[str, Any]] = {}
    if since is not None:
        for job, payload in run.listed(since):
            todo.setdefault(str(job), job)
            payloads[str(job)] = payload
    return run.all(list(todo.values()), payloads, policy.concurrency, each, on_progress)


def _as_job(prov: Provider, job: str | Job) -> Job:
    if isinstance(job, Job):
        return prov.job(job.id, job.namespace, job.params)
    return prov.job_from_line(job.strip())


def committed_jobs(sink: Sink, prov: Provider) -> set[str]:
    """The sources (`provider:job`) of the provider's committed loads into the sink's table."""
    return {load.source for load in committed_loads(sink) if load.provider == prov.name}


class _Stopped(Exception):
    """The run is stopping (Ctrl-C in the main thread): pollers end at their next wait."""


class _Run:
    """One `ingest_many`: the pollers, the one writer, and the tally."""

    def __init__(
        self,
        prov: Provider,
        sink: Sink,
        options: LoadOptions,
        poll: PollPolicy,
        http: HttpPolicy | None,
        api: ApiAccess | None,
    ) -> None:
        self.prov, self.sink, self.options, self.http, self.api = prov, sink, options, http, api
        self.stop = threading.Event()
        self.poll = replace(poll, clock=_stoppable(poll.clock, self.stop))
        self.gate = Gate(self.poll.clock)
        self.tally = JobTally()
        self.lock = threading.Lock()
        self.results: list[JobResult] = []

    def client(self, job: Job) -> ApiClient:
        local = self.http is not None and self.http.allow_local_urls
        clock = self.poll.clock
        return client_for(self.prov, job, self.api, clock, local, self.gate)

    def listed(self, since: datetime) -> Iterator[tuple[Job, Mapping[str, Any]]]:
        """The listed jobs that ended with results to load; the others are counted."""
        with self.client(Job("")) as client:
            for payload in list_jobs(self.prov, client, since):
                job = self.prov.job_from_payload(payload)
                state = self.prov.state(payload)
                if job is not None and (state == "succeeded" or self._partial(payload, state)):
                    yield job, payload
                else:
                    why = "still running" if state == "running" else f"{state} without results"
                    self.tally.left_out[why] = self.tally.left_out.get(why, 0) + 1

    def _partial(self, payload: Mapping[str, Any], state: str) -> bool:
        left = self.prov.partial_location(payload, self.prov.describe(Job("")))
        return self.options.partial and state != "running" and left is not None

    def all(
        self,
        jobs: list[Job],
        payloads: dict[str, Mapping[str, Any]],
        concurrency: int,
        each: Callable[[JobResult], None] | None,
        on_progress: Callable[[JobTally], None] | None,
    ) -> list[JobResult]:
        committed = committed_jobs(self.sink, self.prov)
        show = on_progress or (lambda tally: None)
        todo = []
        for job in jobs:
            if source_name(self.prov, job) in committed:
                self.done(JobResult(str(job), "skipped"), each)
            else:
                todo.append(job)
        self.tally.waiting = len(todo)
        show(self.tally)
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="resultloader-poll")
        try:
            running = {pool.submit(self.polled, j, payloads.get(str(j))): j for j in todo}
            while running:
                ended, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in ended:
                    self.load(running.pop(future), future, each)
                    show(self.tally)
                show(self.tally)
        finally:
            self.stop.set()  # (only on an error or Ctrl-C is anything still polling)
            pool.shutdown(wait=True, cancel_futures=True)
        return self.results

    def polled(self, job: Job, payload: Mapping[str, Any] | None) -> tuple[ApiClient, Any]:
        """In a poller thread: the job's client and its final status payload."""
        with self.lock:
            self.tally.waiting -= 1
            self.tally.running += 1
        client = self.client(job)
        try:
            if payload is None:
                payload = _status(self.prov, client, job, self.poll, None)
        except BaseException:
            client.session.close()
            raise
        return client, payload

    def load(self, job: Job, future: Future[tuple[ApiClient, Any]], each: Any) -> None:
        """In this thread, the one writer: the ended job's results into the sink."""
        client: ApiClient | None = None
        try:
            client, payload = future.result()
            report = load_job(
                self.prov, client, job, payload, self.sink, self.options, self.http, None
            )
            result = JobResult(str(job), "loaded", report)
        except Exception as exc:  # (_Stopped included)
            error = _reason(exc)
            result = JobResult(str(job), "failed", error=client.scrub(error) if client else error)
            result.not_ready = isinstance(exc, NotReady)
        finally:
            if client is not None:
                client.session.close()
        with self.lock:
            self.tally.running -= 1
        self.done(result, each)

    def done(self, result: JobResult, each: Callable[[JobResult], None] | None) -> None:
        self.results.append(result)
        setattr(self.tally, result.outcome, getattr(self.tally, result.outcome) + 1)
        if each is not None:
            each(result)


def _reason(exc: BaseException) -> str:
    """One line: our errors say it themselves; anything else is named by its type."""
    if isinstance(exc, (ResultLoaderError, ValueError, OSError)):
        return " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {first_line(exc)}"


def _stoppable(clock: Clock, stop: threading.Event) -> Clock:
    """The clock whose sleeps end as soon as the run stops (a real sleep waits on `stop`)."""

    def sleep(seconds: float) -> None:
        if clock.sleep is time.sleep:
            stop.wait(seconds)
        elif not stop.is_set():
            clock.sleep(seconds)
        if stop.is_set():
            raise _Stopped("stopped")

    return replace(clock, sleep=sleep)

"""`ingest`: poll a provider's job until it ends, find its results, and load them.

Inline results are written out as JSONL and go through the same load as a file, so every load
path shares one parser, one reject policy and one transaction. Downloads are streamed; an expired
link is refreshed through the provider where the API allows it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import IO, Any, cast
from urllib.parse import urlsplit

from .._errors import KEY_FIXED, DownloadError, JobExpired, ResultLoaderError
from .._model import LoadInfo, LoadOptions, LoadReport, one_way_in
from ..parse._rows import dumps
from ..providers._client import ApiAccess, ApiClient, client_for
from ..providers.base import Job, Provider, get_provider
from ..providers.location import Download, Inline, Location
from ..providers.poll import Clock, JobStatus, PollPolicy, wait_for
from ..sinks import Sink
from ..sources import Opened, open_source
from ..sources.download import HttpPolicy
from ..sources.expand import expand, is_glob
from .load import Progress, SinkLike, as_sink, record_failure, run_load


def resolve(
    provider: str | Provider,
    payload: Mapping[str, Any],
    *,
    job_id: str | None = None,
    items_path: str | None = None,
) -> Location:
    """Where a job's results are, from a status payload you fetched yourself (no I/O).

    Returns `Inline(rows)` or `Download(url, ...)`; raises NotReady, JobFailed, JobCancelled or
    JobExpired when there are no results to load.
    """
    return get_provider(provider).resolve(payload, job_id=job_id, items_path=items_path)


def ingest(
    provider: str | Provider,
    job: str | Job | None = None,
    sink: SinkLike = None,
    options: LoadOptions | None = None,
    poll: PollPolicy | None = None,
    http: HttpPolicy | None = None,
    api: ApiAccess | None = None,
    *,
    payload: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    on_status: Callable[[JobStatus], None] | None = None,
) -> LoadReport:
    """Wait for `job` to end, then load its results into `sink`; the report's `status` is
    the job's final status (also recorded in the sink's ledger).

    `job` is the job's id (`NAMESPACE/ID` for a provider that scopes ids, as SafetyKit's data
    requests), or a `Job(id, namespace, params)`, params being a provider's own options such as
    Shopify's `shop`; with a `payload` that names its job it may be left out. `payload` is a
    status payload you already have (a webhook's, a saved file's): it is resolved instead of
    polling. How to read the results is `options` (LoadOptions; `partial=True` loads what a
    failed, expired or cancelled job left behind, where the API keeps it), how to wait `poll`
    (PollPolicy; `wait=False` checks once and raises NotReady if the job still runs), how to
    download `http` (HttpPolicy), how to reach the API `api` (ApiAccess: the key, else the
    provider's environment variable such as OPENAI_API_KEY; the base URL, else its *_BASE_URL
    variable). The poll timeout bounds every status call of the ingest, waiting included. URLs
    in the API's answers may point at loopback, private or link-local addresses only when the
    base URL is itself such an address, or with `HttpPolicy(allow_local_urls=True)`.
    """
    prov = get_provider(provider)
    options = one_way_in(options, "ingest")
    policy = poll or PollPolicy()
    the_job = _the_job(prov, job, payload)
    target = as_sink(sink)
    local = http is not None and http.allow_local_urls
    with client_for(prov, the_job, api, policy.clock, local) as client:
        if payload is None:
            payload = _status(prov, client, the_job, policy, on_status)
        return load_job(prov, client, the_job, payload, target, options, http, progress)


def source_name(prov: Provider, job: Job) -> str:
    """The job as the ledger's `source` names it (`openai-batch:batch_abc`)."""
    return f"{prov.name}:{job}" if str(job) else prov.name


def load_job(
    prov: Provider,
    client: ApiClient,
    job: Job,
    payload: Mapping[str, Any],
    sink: Sink,
    options: LoadOptions,
    http: HttpPolicy | None,
    progress: Progress | None,
) -> LoadReport:
    """An ended job's results, found from its status payload, loaded into `sink`: one load."""
    if options.index_ids is True:  # a keyless item's id: JOB_ID/INDEX
        options = replace(options, index_ids=job.id)
    options = replace(options, columns=prov.typed(options.columns))
    location = _resolve(prov, client, payload, job, options)
    status = prov.raw_status(payload)
    if isinstance(location, Download) and location.partial:
        status += " (partial)"
    info = LoadInfo(
        source_name(prov, job),
        options,
        provider=prov.name,
        job_id=job.id or None,
        job_status=status,
    )
    if isinstance(location, Inline):
        return _load_inline(location, sink, info, progress)
    download = _bind(prov, client, job, location)
    http = replace(http or HttpPolicy(), url_rule=client.url_rule)
    return _load_download(download, sink, info, progress, client.time_left.clock, prov, job, http)


def _the_job(prov: Provider, job: str | Job | None, payload: Mapping[str, Any] | None) -> Job:
    """The job given, or the one a saved payload names (as the CLI's --status-file does)."""
    if isinstance(job, Job):
        return prov.job(job.id, job.namespace, job.params)
    if job is None and payload is not None:
        found = prov.job_from_payload(payload)
        if found is not None:
            return prov.job(found.id, found.namespace, found.params)
    return prov.job_from_line(job.strip()) if job else prov.job("")


def _resolve(
    prov: Provider,
    client: ApiClient,
    payload: Mapping[str, Any],
    job: Job,
    options: LoadOptions,
) -> Location:
    """The payload resolved; a failed job's error text may quote the key: it is scrubbed."""
    try:
        return prov.resolve(
            payload, job_id=job.id or None, items_path=options.items_path, partial=options.partial
        )
    except ResultLoaderError as exc:
        scrubbed = client.scrub(str(exc))
        if scrubbed == str(exc):
            raise
        raise type(exc)(scrubbed) from None


def _status(
    prov: Provider,
    client: ApiClient,
    job: Job,
    policy: PollPolicy,
    on_status: Callable[[JobStatus], None] | None,
) -> dict[str, Any]:
    """The job's status payload: the first terminal one, or (wait=False) the only one."""

    def check(n: int, elapsed: float) -> tuple[dict[str, Any], JobStatus]:
        found = prov.fetch_status(client, job)
        status = JobStatus(
            prov.name,
            str(job),
            prov.raw_status(found),
            prov.state(found),
            prov.counts(found),
            n,
            elapsed,
        )
        return found, status

    client.time_left.deadline = policy.clock.monotonic() + policy.timeout
    try:
        if not policy.wait:
            found, status = check(1, 0.0)
            if on_status is not None:
                on_status(status)
            return found  # resolving a running job's payload raises NotReady
        return wait_for(check, policy, policy.bounds(prov), prov.describe(job), on_status)
    finally:
        client.time_left.deadline = None  # the timeout bounds the wait, not the download


def _load_inline(
    location: Inline, sink: Sink, info: LoadInfo, progress: Progress | None
) -> LoadReport:
    """Rows from the status payload, through the usual load of a JSON array (exact numbers
    kept)."""
    options = replace(info.options, format="json", items_path=None)
    if location.document_id is not None:
        options = replace(options, key="id")  # the wrapped document's row is keyed by `id`
    # one JSON array, so a bad row is named by its item number, as in a downloaded document
    data = b"[" + b",\n".join(dumps(row, exact=True).encode() for row in location.rows) + b"]"
    opened = open_source(io.BytesIO(data))
    return run_load(opened, sink, options, replace(info, options=options), progress)


def _bind(
    prov: Provider, client: ApiClient, job: Job, location: Download, part: int = 0
) -> Download:
    """The Download with its auth header (own host only) and its refresh, where possible.
    `part`: which file of the results this is (0, or the index in `then` plus one), so that
    a renewed link is the fresh link to the same file."""
    if location.on_api:  # a path on the API, which the key may go to
        location = replace(location, url=client.base_url + prov.api_path(location.url, job))
    then = tuple(_bind(prov, client, job, p, n) for n, p in enumerate(location.then, 1))
    location = replace(location, then=then)
    headers = client.auth_headers() if client.same_origin(location.url) else {}
    refresh: Callable[[], Download] | None = None
    if prov.can_refresh(client, location) and not client.has_key:
        refresh = _needs_key(prov, job, location)
    elif prov.can_refresh(client, location):

        def refresh() -> Download:
            fresh = prov.refresh(client, job, location)
            files = (fresh, *fresh.then)
            if part >= len(files):
                raise JobExpired(f"{prov.describe(job)}: the API no longer lists this file")
            return _bind(prov, client, job, replace(files[part], then=()), part)

    return replace(location, headers=headers, refresh=refresh)


def _needs_key(prov: Provider, job: Job, location: Download) -> Callable[[], Download]:
    """A saved payload's link has expired and, without a key, the API cannot give a fresh one:
    say both, rather than only that the key is missing."""

    def refresh() -> Download:
        when = location.expires_at.isoformat() if location.expires_at else None
        expired = f"expired at {when}" if when else "was refused (expired?)"
        raise JobExpired(
            f"{prov.describe(job)}: the download link {expired}; fetching a fresh one from the "
            f"API needs its key: set {prov.key_env}"
        )

    return refresh


def _load_download(
    download: Download,
    sink: Sink,
    info: LoadInfo,
    progress: Progress | None,
    clock: Clock,
    prov: Provider,
    job: Job,
    http: HttpPolicy | None = None,
) -> LoadReport:
    what = prov.describe(job)
    options = _mapped(info.options, download, prov)
    if options.format == "auto":
        options = replace(options, format=download.format)
    failures: list[ResultLoaderError] = []
    info = replace(info, options=options)
    opened: Opened | None = None
    try:
        opened = _open(download, clock, what, failures, options, http)
        return run_load(opened, sink, options, info, progress, download.document_id)
    except Exception as exc:
        error = _download_failure(exc, failures, download, what, prov)
        if opened is None:  # run_load has not begun the load: history says why it did not
            record_failure(sink, info, error)
        if error is exc:
            raise
        raise error from None


def _download_failure(
    exc: Exception,
    failures: list[ResultLoaderError],
    download: Download,
    what: str,
    prov: Provider,
) -> Exception:
    """The error to raise for a download that failed: the refresh's own, if fetching a fresh
    link failed; a refused link that cannot be renewed as JobExpired; else `exc` itself."""
    if not isinstance(exc, DownloadError):
        return exc
    if failures:
        return failures[-1]
    if download.refresh is None and exc.status in (403, 410):
        return JobExpired(f"{what}: the result link was refused ({exc}); {prov.stale_link_hint}")
    return exc


def _open(
    download: Download,
    clock: Clock,
    what: str,
    failures: list[ResultLoaderError],
    options: LoadOptions,
    http: HttpPolicy | None,
) -> Opened:
    """The download as one stream: its file, then the `then` files, opened as they come."""

    def one(part: Download) -> Opened:
        part = _unexpired(part, clock, what)
        refresh = _url_refresher(part, clock, what, failures) if part.refresh else None
        return open_source(
            part.url,
            headers=dict(part.headers) or None,
            refresh=refresh,
            max_bytes=options.max_bytes,
            policy=http,
        )

    first, *others = _files(download, what)
    if not others:
        return one(first)
    rest: list[Callable[[], Opened]] = [functools.partial(one, p) for p in others]
    return open_source(cast(IO[bytes], _Parts(one(first), rest)))


def _files(download: Download, what: str) -> list[Download]:
    """The download's files in order, `then` included. An s3:// URL with a wildcard stands
    for every object it matches, in name order (Bedrock's `{job}/**/*.jsonl.out`: one output
    file per input file, whose names the status does not give); none is an error."""
    found: list[Download] = []
    for part in (replace(download, then=()), *download.then):
        if urlsplit(part.url).scheme.lower() != "s3" or not is_glob(part.url):
            found.append(part)
            continue
        try:
            matched = expand([part.url])
        except DownloadError as exc:
            raise DownloadError(f"{what}: {exc}") from None
        found += [replace(part, url=source.name) for source in matched]
    return found


class _Parts(io.RawIOBase):
    """Several result files read as one JSONL stream, a newline between two, so that one
    load (one transaction, one numbering of lines for last-wins) holds them all."""

    def __init__(self, first: Opened, rest: list[Callable[[], Opened]]) -> None:
        self.name = first.name
        self.current: Opened | None = first
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.current is not None:
            data = self.current.stream.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self.current.close()
            self.current = self.rest.pop(0)() if self.rest else None
            if self.current is not None:
                buffer[:1] = b"\n"
                return 1
        return 0

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()


def _mapped(options: LoadOptions, download: Download, prov: Provider) -> LoadOptions:
    """The provider's row mapping in the options; a --key of one's own cannot go with it."""
    if download.mapping is None:
        return options
    if options.key != "id":
        raise ResultLoaderError(
            f"{prov.name}: rows are keyed by {download.mapping.key!r} {KEY_FIXED}"
        )
    return replace(options, mapping=download.mapping)


def _unexpired(download: Download, clock: Clock, what: str) -> Download:
    """Never start a download whose link has already expired: get a fresh one first."""
    for _ in range(3):
        if not download.expired(clock.now()):
            return download
        if download.refresh is None:
            break
        download = download.refresh()
    stamp = download.expires_at.isoformat() if download.expires_at else "?"
    raise JobExpired(
        f"{what}: the download link expired at {stamp} and no fresh one could be had; "
        "ingest the job again"
    )


def _url_refresher(
    download: Download, clock: Clock, what: str, failures: list[ResultLoaderError]
) -> Callable[[], str]:
    """For the downloader: a fresh URL each time the server refuses the current one."""
    current = download

    def fresh_url() -> str:
        nonlocal current
        try:
            assert current.refresh is not None
            # (a fresh link on another host gets none of the headers: the downloader sees to it)
            fresh = _unexpired(current.refresh(), clock, what)
        except ResultLoaderError as exc:
            failures.append(exc)
            raise
        current = fresh
        return fresh.url

    return fresh_url

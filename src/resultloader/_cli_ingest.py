"""`resultloader ingest PROVIDER ...`: poll a job until it ends, then load its results."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import click

from ._cli import (
    common_options,
    handle_errors,
    http_policy,
    notices,
    print_report,
    progress_bar,
    read_options,
)
from ._ingest import ingest
from ._model import Format, LoadOptions, OnError
from ._pipeline import Progress
from ._poll import JobStatus, PollPolicy
from .parse._rows import decode_exact
from .providers.base import get_provider
from .sinks.targets import sink_for

_INGEST_OPTIONS = [
    click.option(
        "--base-url",
        default=None,
        metavar="URL",
        help="API base URL [default: the public one, or $SAFETYKIT_BASE_URL / $PULSE_BASE_URL].",
    ),
    click.option(
        "--timeout",
        default=3600.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Give up waiting for the job after this long (the job keeps running).",
    ),
    click.option(
        "--poll-interval",
        default=None,
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="First wait between status checks; it grows with backoff "
        "[default: the API's guidance, 3 s for SafetyKit, 2 s for Pulse].",
    ),
    click.option(
        "--no-wait",
        is_flag=True,
        help="Check the status once: load if the job is done, else exit with status 3.",
    ),
    click.option(
        "--status-file",
        default=None,
        metavar="FILE",
        help="Resolve this saved status payload (JSON; - for stdin) instead of polling.",
    ),
    click.option(
        "--allow-local-urls",
        is_flag=True,
        help="Follow URLs in the API's answers (and redirects) to loopback, private and "
        "link-local addresses; only for an API you trust [default: only when the base URL "
        "is itself such an address].",
    ),
]


def ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_INGEST_OPTIONS):
        fn = option(fn)
    return fn


@click.group("ingest")
def ingest_group() -> None:
    """Poll an API job until it ends, then load its results into DuckDB in one transaction.

    The API key comes from SAFETYKIT_API_KEY or PULSE_API_KEY. Exit status: 0 loaded,
    3 not ready yet (--no-wait), 1 any other failure (the job failed, was cancelled or
    expired; a wrong key; a broken download).
    """


@ingest_group.command("safetykit")
@click.option("--namespace", default=None, help="The namespace the data was sent to.")
@click.option("--request-id", default=None, help="The request id the Add/Import call returned.")
@ingest_options
@read_options
@common_options
def safetykit_command(namespace: str | None, request_id: str | None, **kw: Any) -> None:
    """A SafetyKit data request: inline rows (add) or the JSONL data_url (import)."""
    _run("safetykit", request_id, namespace, kw)


@ingest_group.command("safetykit-batch")
@click.option("--batch-id", default=None, help="The batch id.")
@ingest_options
@read_options
@common_options
def batch_command(batch_id: str | None, **kw: Any) -> None:
    """A SafetyKit batch: its CSV download, keyed by the --key column (id)."""
    _run("safetykit-batch", batch_id, None, kw)


@ingest_group.command("pulse")
@click.option("--job-id", default=None, help="The id the async extraction returned.")
@click.option(
    "--index-ids",
    is_flag=True,
    help="Items without the --key field get the id JOB_ID/INDEX (INDEX from 0), so two "
    "jobs' items never overwrite each other.",
)
@ingest_options
@read_options
@common_options
def pulse_command(job_id: str | None, **kw: Any) -> None:
    """A Pulse extraction: the whole result as one row keyed by the job id, or with
    --items-path, the items of that array as rows.

    Items are keyed by their --key field (id). Keyed by a field such as `page`, two jobs'
    items overwrite each other in one table (the last load wins): use --index-ids, or a
    --table per job.
    """
    _run("pulse", job_id, None, kw)


def _run(provider: str, job_id: str | None, namespace: str | None, kw: dict[str, Any]) -> None:
    quiet = bool(kw["quiet"] or kw["as_json"])
    with handle_errors(kw["as_json"], kw["status_file"]):
        payload = _read_status(kw["status_file"]) if kw["status_file"] else None
    if not job_id and payload is None:
        raise click.UsageError(f"{provider}: give the job's id (see --help)")
    with handle_errors(kw["as_json"], f"{provider}:{job_id or kw['status_file']}"):
        with ExitStack() as stack, notices(kw["quiet"]):
            report = ingest(
                provider,
                job_id,  # None: the one the saved payload names
                sink_for(kw["into"], kw["table"]),
                _load_options(kw, job_id or _payload_job(provider, payload)),
                PollPolicy(timeout=kw["timeout"], interval=kw["poll_interval"]),
                http_policy(kw["download_timeout"], kw["allow_local_urls"]),
                namespace=namespace,
                wait=not kw["no_wait"],
                payload=payload,
                base_url=kw["base_url"],
                progress=_lazy_bar(stack, quiet),
                on_status=None if quiet else _status_printer(),
            )
        print_report(report, kw["as_json"], kw["quiet"])


def _load_options(kw: dict[str, Any], job_id: str | None = None) -> LoadOptions:
    extra = {"max_bytes": kw["max_bytes"]} if "max_bytes" in kw else {}
    if kw.get("index_ids") and job_id:
        extra["index_ids"] = job_id
    return LoadOptions(
        format=cast(Format, kw["fmt"]),  # click.Choice has checked both
        key=kw["key"],
        items_path=kw["items_path"],
        on_error=cast(OnError, kw["on_error"]),
        max_line_bytes=kw["max_line_bytes"],
        delimiter=kw.get("delimiter"),
        **extra,
    )


def _payload_job(provider: str, payload: dict[str, Any] | None) -> str | None:
    found = get_provider(provider).job_from_payload(payload) if payload is not None else None
    return found.id if found else None


def _read_status(path: str) -> dict[str, Any]:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a file") from None
    try:
        payload = decode_exact(data)  # numbers kept exactly, as when polling
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON status payload: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a status payload is a JSON object")
    return payload


def _status_printer() -> Callable[[JobStatus], None]:
    """One line on stderr each time the status or its counts change, not on every check."""
    last: tuple[object, ...] = ()

    def show(status: JobStatus) -> None:
        nonlocal last
        now = (status.status, tuple(sorted((status.counts or {}).items())))
        if now != last:
            click.echo(status.line(), err=True)
            last = now

    return show


def _lazy_bar(stack: ExitStack, disabled: bool) -> Progress:
    """The download's progress bar, drawn from the first bytes on, not while waiting."""
    bar: list[Callable[[int, int | None, int], None] | None] = []

    def update(done: int, total: int | None, rows: int) -> None:
        if not bar:
            bar.append(stack.enter_context(progress_bar(disabled)))
        draw = bar[0]
        if draw is not None:
            draw(done, total, rows)

    return update

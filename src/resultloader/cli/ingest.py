"""`resultloader ingest PROVIDER ...`: poll a job until it ends, then load its results."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import click

from .._model import Format, LoadOptions, OnError
from ..parse._rows import decode_exact
from ..pipeline.ingest import ingest
from ..pipeline.load import Progress
from ..providers._client import ApiAccess
from ..providers.base import _BROKEN, Provider, get_provider, provider_names
from ..providers.poll import JobStatus
from ..sinks.registry import sink_for
from ._common import (
    common_options,
    examples,
    handle_errors,
    http_policy,
    notices,
    poll_policy,
    print_report,
    progress_bar,
    read_options,
)
from .ingest_many import many_options, run_many

_INGEST_OPTIONS = [
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
        "[default: the API's guidance].",
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
_INDEX_IDS = click.option(
    "--index-ids",
    is_flag=True,
    help="Items without the --key field get the id JOB_ID/INDEX (INDEX from 0), so two "
    "jobs' items never overwrite each other.",
)
_PARTIAL = click.option(
    "--partial",
    is_flag=True,
    help="Load the results a failed, expired or cancelled job left (the ledger says partial); "
    "without it such a job fails and nothing is loaded.",
)


def ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_INGEST_OPTIONS):
        fn = option(fn)
    return fn


class _ProviderGroup(click.Group):
    """`ingest NAME`: one command per registered provider (built in, or installed through the
    `resultloader.providers` entry point group), made from what the provider declares."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return provider_names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        try:
            return provider_command(get_provider(cmd_name))
        except ValueError:
            return None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if _BROKEN:
            with formatter.section("Installed but not loaded"):
                formatter.write_dl(sorted(_BROKEN.items()))
        super().format_epilog(ctx, formatter)


@click.group(
    "ingest",
    cls=_ProviderGroup,
    epilog=examples(
        "resultloader ingest openai-batch --batch-id batch_abc123 --into llm.duckdb",
        "resultloader ingest safetykit --namespace products --ids-file ids.txt --on-error skip",
    ),
)
def ingest_group() -> None:
    """Poll an API job until it ends, then load its results into the --into target in one
    transaction: a DuckDB file (results.duckdb by default), postgresql://... or delta:PATH.

    Each provider reads its API key from its own environment variable (see NAME --help).
    Many jobs: --ids-file FILE (one id a line) or, where the API lists its jobs, --since DATE;
    each job is loaded on its own, those already in the ledger are skipped.
    Exit status: 0 loaded, 3 not ready yet (--no-wait), 1 any other failure (the job failed,
    was cancelled or expired; a wrong key; a broken download).
    """


def provider_command(prov: Provider) -> click.Command:
    """The `ingest NAME` command of one provider, from its declared flags and help."""

    def run(job_id: str | None, **kw: Any) -> None:
        namespace = kw.pop("namespace", None)
        params = {o.dest: kw.pop(o.dest) for o in prov.options if o.dest != "namespace"}
        params = {k: v for k, v in params.items() if v is not None}
        if prov.mapping is not None:
            _refuse_row_shape(prov.name, prov.mapping.key, kw)
        if kw["ids_file"] or kw["since"]:
            run_many(prov, job_id, namespace, params, kw, _load_options(kw))
        else:
            _run(prov, job_id, namespace, params, kw)

    fn = common_options(read_options(ingest_options(run), shaped=prov.mapping is not None))
    for option in reversed(many_options(prov)):
        fn = option(fn)
    extra = [_PARTIAL] if prov.partial_results else []
    extra += [_INDEX_IDS] if prov.index_ids else []
    extra += [_base_url_option(prov)]
    extra += [
        click.option(
            o.flag, o.dest, default=o.default, metavar=o.metavar, help=o.help, show_default=True
        )
        for o in prov.options
    ]
    job = click.option(
        prov.job_flag, "job_id", default=None, metavar=_job_metavar(prov), help=prov.job_help
    )
    extra.insert(0, job)
    for option in reversed(extra):
        fn = option(fn)
    own = vars(type(prov)).get("__doc__")  # not the base class's docstring
    text = inspect.cleandoc(own) if own else ""
    help_text = "\n\n".join(t for t in (prov.title, text, prov.credentials_help) if t)
    command = click.command(
        prov.name, help=help_text, short_help=prov.title or None, epilog=_examples(prov)
    )
    return command(fn)


# The options saying how rows are found in a file: (flag, default) by parameter name.
_ROW_SHAPE = {
    "fmt": ("--format", "auto"),
    "delimiter": ("--delimiter", None),
    "key": ("--key", "id"),
    "items_path": ("--items-path", None),
}


def _refuse_row_shape(provider: str, key: str, kw: dict[str, Any]) -> None:
    """A provider with a mapping reads its files as the API writes them: an option saying how
    rows are found would be ignored or contradict it, so it is hidden and refused in one line."""
    for dest, (flag, default) in _ROW_SHAPE.items():
        if kw[dest] != default:
            raise click.UsageError(
                f"{provider}: its result files are read as the API writes them, rows keyed "
                f"by {key!r}; {flag} does not apply"
            )


def _examples(prov: Provider) -> str:
    """One job, and many (listed since a date where the provider can list, else a file)."""
    start = " ".join(["resultloader ingest", prov.name, *_needed_options(prov)])
    many = "--since 2026-01-01" if prov.listing is not None else "--ids-file ids.txt"
    one = f"{start} {prov.job_flag} {_job_metavar(prov)} --into results.duckdb"
    return examples(one, f"{start} {many}")


def _job_metavar(prov: Provider) -> str:
    return prov.job_flag.removeprefix("--").replace("-", "_").upper()  # --batch-id: BATCH_ID


def _needed_options(prov: Provider) -> list[str]:
    """The provider's own options without a default (--namespace, --shop), with placeholders."""
    return [
        f"{o.flag} {o.dest.upper() if o.metavar == 'TEXT' else o.metavar}"
        for o in prov.options
        if o.default is None
    ]


def _base_url_option(prov: Provider) -> Callable[..., Any]:
    env = f" or ${prov.base_url_env}" if prov.base_url_env else ""
    return click.option(
        "--base-url",
        default=None,
        metavar="URL",
        help=f"API base URL [default: {prov.base_url}{env}].",
    )


def _run(
    prov: Provider,
    job_id: str | None,
    namespace: str | None,
    params: dict[str, str],
    kw: dict[str, Any],
) -> None:
    provider = prov.name
    quiet = bool(kw["quiet"] or kw["as_json"])
    with handle_errors(kw["as_json"], kw["status_file"]):
        payload = _read_status(kw["status_file"]) if kw["status_file"] else None
    if not job_id and payload is None and prov.job_required:
        raise click.UsageError(
            f"{provider}: give the job's id ({prov.job_flag}), or many with --ids-file"
        )
    with handle_errors(kw["as_json"], f"{provider}:{job_id or kw['status_file'] or ''}"):
        found = prov.job_from_payload(payload) if payload and not job_id else None
        if found is not None:
            job_id, namespace = found.id, namespace or found.namespace
        job = (
            None
            if job_id is None and prov.job_required
            else prov.job(job_id or "", namespace, params)
        )
        with ExitStack() as stack, notices(kw["quiet"]):
            report = ingest(
                provider,
                job,  # None: the one the saved payload names
                sink_for(kw["into"], kw["table"]),
                _load_options(kw),
                poll_policy(kw),
                http_policy(kw),
                ApiAccess(base_url=kw["base_url"]),
                payload=payload,
                progress=_lazy_bar(stack, quiet),
                on_status=None if quiet else _status_printer(),
            )
        print_report(report, kw["as_json"], kw["quiet"])


def _load_options(kw: dict[str, Any]) -> LoadOptions:
    extra = {"max_bytes": kw["max_bytes"]} if "max_bytes" in kw else {}
    return LoadOptions(
        format=cast(Format, kw["fmt"]),  # click.Choice has checked both
        key=kw["key"],
        items_path=kw["items_path"],
        on_error=cast(OnError, kw["on_error"]),
        max_line_bytes=kw["max_line_bytes"],
        delimiter=kw.get("delimiter"),
        memory=kw["memory"],
        threads=kw["threads"],
        columns=kw["columns"],
        index_ids=True if kw.get("index_ids") else None,  # each job's own id
        partial=bool(kw.get("partial")),
        **extra,
    )


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

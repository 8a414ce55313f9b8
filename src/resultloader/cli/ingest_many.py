"""`resultloader ingest PROVIDER --ids-file FILE|-` and `--since DATE`: many jobs, one line (or
JSON object) per job, a progress line, and an exit status that says whether all were loaded."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import click

from .._errors import Terminated
from .._model import LoadOptions
from ..pipeline.ingest_many import JobResult, JobTally, ingest_many
from ..providers._client import ApiAccess
from ..providers.base import Job, Provider, provider_names
from ..sinks.registry import sink_for
from ._common import (
    handle_errors,
    http_policy,
    in_cli_words,
    notices,
    poll_policy,
    result_line,
)


def many_options(prov: Provider) -> list[Callable[..., Any]]:
    """`--ids-file`, `--since` and `--concurrency`, on every provider's command. `--since` is
    listed only where the provider can list its jobs; elsewhere it is hidden, and refused in
    one line that names the providers that can."""
    many = "--ids-file" if prov.listing is None else "--ids-file or --since"
    return [
        click.option(
            "--ids-file",
            default=None,
            metavar="FILE",
            help="Ingest every job named in FILE (- for stdin): one id a line; blank lines and "
            "# comments are ignored.",
        ),
        click.option(
            "--since",
            default=None,
            metavar="DATE",
            hidden=prov.listing is None,
            help="Reconcile: ingest every job created since DATE (YYYY-MM-DD or an ISO 8601 "
            "time, UTC unless it says) that has ended and is not in the ledger.",
        ),
        click.option(
            "--concurrency",
            default=8,
            show_default=True,
            type=click.IntRange(min=1),
            metavar="N",
            help=f"With {many}: poll N jobs at once (one 429 holds them all).",
        ),
    ]


def run_many(
    prov: Provider,
    job_id: str | None,
    namespace: str | None,
    params: dict[str, str],
    kw: dict[str, Any],
    options: LoadOptions,
) -> None:
    """Every job of the ids file and/or the listing; exits 0 only if each was loaded or had
    been before (3 if the only misses are jobs not yet ended, under --no-wait; else 1)."""
    _refuse_conflicts(prov, job_id, kw)
    since = _since(kw["since"]) if kw["since"] else None
    jobs = list(_read_ids(prov, kw["ids_file"], namespace, params)) if kw["ids_file"] else []
    quiet, as_json = bool(kw["quiet"]), bool(kw["as_json"])
    line = _ProgressLine(enabled=not quiet and sys.stderr.isatty())

    done: list[JobResult] = []

    def show(result: JobResult) -> None:
        done.append(result)
        line.clear()
        if as_json:
            click.echo(result_line(result.to_dict()))
        elif not quiet and result.outcome != "failed":  # failures: listed at the end
            click.echo(_said(prov, result), err=True)

    with handle_errors(as_json, prov.name), notices(quiet), _stopped(prov, done, line):
        results = ingest_many(
            prov,
            jobs,
            sink_for(kw["into"], kw["table"]),
            options,
            poll_policy(kw),
            http_policy(kw),
            ApiAccess(base_url=kw["base_url"]),
            since=since,
            each=show,
            on_progress=line.draw,
        )
    line.clear()
    _finish(prov, results, line.tally, quiet)


@contextlib.contextmanager
def _stopped(prov: Provider, done: list[JobResult], line: _ProgressLine) -> Iterator[None]:
    """Ctrl-C or SIGTERM: the jobs loaded so far stay committed (unlike a single load, where
    nothing is): say so, with the counts, and exit 130 (143)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        line.clear()
        word, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        loaded = sum(r.outcome == "loaded" for r in done)
        click.echo(
            f"{word}: {prov.name}: {_jobs(loaded)} loaded before stay committed (a re-run skips "
            "them); the job loading then, if any, was rolled back",
            err=True,
        )
        sys.exit(code)


def _refuse_conflicts(prov: Provider, job_id: str | None, kw: dict[str, Any]) -> None:
    if job_id:
        raise click.UsageError(f"{prov.job_flag} is one job: put it in --ids-file instead")
    if kw["status_file"]:
        raise click.UsageError("--status-file is one job's status: not with --ids-file/--since")
    if kw["since"] and prov.listing is None:
        can = ", ".join(n for n in provider_names() if _lists(n))
        _fail(f"error: {prov.name} cannot list its {prov.noun}s, so --since cannot be used "
              f"(it can with {can}); give them with --ids-file", 2)  # fmt: skip


def _lists(name: str) -> bool:
    from ..providers.base import get_provider

    return get_provider(name).listing is not None


def _since(text: str) -> datetime:
    """DATE or an ISO 8601 time; UTC unless it names its offset."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)
    except ValueError:
        _fail(f"error: --since {text!r}: not a date (YYYY-MM-DD, or an ISO 8601 time)", 2)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _read_ids(
    prov: Provider, path: str, namespace: str | None, params: dict[str, str]
) -> Iterator[Job]:
    """The jobs the file names, each line checked by the provider; a bad line is named."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"error: --ids-file {name}: {getattr(exc, 'strerror', None) or exc}", 1)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            yield prov.job_from_line(line, namespace, params)
        except ValueError as exc:
            _fail(f"error: {name}, line {number}: {exc}", 1)


def _said(prov: Provider, result: JobResult) -> str:
    if result.report is not None:
        return result.report.summary()  # `openai-batch batch_abc (completed): 3 rows read, ...`
    what = f"{prov.name} {result.job}"
    if result.outcome == "skipped":
        return f"{what}: skipped: committed before"
    error = in_cli_words(result.error or "no details")
    return error if result.job in error else f"{what}: {error}"  # (most errors name their job)


def _finish(prov: Provider, results: list[JobResult], tally: JobTally, quiet: bool) -> None:
    """The summary line, then each failed job on a line of its own, and the exit status."""
    failed = [r for r in results if r.outcome == "failed"]
    if not quiet or failed:
        click.echo(f"{prov.name}: {_jobs(len(results))}: {tally.line()}", err=True)
    for result in failed:
        click.echo(f"failed: {_said(prov, result)}", err=True)
    if failed:
        sys.exit(3 if all(r.not_ready for r in failed) else 1)


def _jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def _fail(line: str, code: int) -> Any:
    click.echo(line, err=True)
    sys.exit(code)


class _ProgressLine:
    """`N waiting, N running, N loaded, ...` redrawn in place on a terminal's stderr."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled, self.shown = enabled, False
        self.tally = JobTally()
        self.stream = stream or sys.stderr

    def draw(self, tally: JobTally) -> None:
        self.tally = tally
        if self.enabled:
            self.stream.write("\r\x1b[2K" + tally.line())
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False

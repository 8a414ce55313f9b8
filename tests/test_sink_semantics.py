"""The guarantees of sinks/__init__.py's docstring, one suite run against every table sink:
DuckDB, PostgreSQL (a real server on loopback) and Delta Lake (a local path and moto's S3).

Each test loads through the public front door (`load(src, TARGET)` or the CLI's `--into`), then
reads what the engine holds with the engine's own client.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import resultloader
from resultloader import ParseError
from resultloader.sinks.registry import sink_for
from resultloader.sources.download import HttpPolicy
from resultloader.testing import Reply
from tests.faulty_http import FaultyServer
from tests.pg_server import PASSWORD
from tests.sink_targets import DeltaTarget, DuckDBTarget, PostgresTarget, Target
from tests.test_jobs import serve_batch
from tests.test_providers import oai  # noqa: F401  (a fixture: the fake OpenAI API)

KINDS = ["duckdb", "postgres", "delta", "delta-s3"]
CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


@pytest.fixture(params=KINDS)
def target(request, tmp_path, monkeypatch) -> Target:
    kind = request.param
    if kind == "duckdb":
        return DuckDBTarget(kind, str(tmp_path / "r.duckdb"))
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        table = f"t_{uuid.uuid4().hex[:10]}"
        return PostgresTarget(kind, url, table, env={"PGPASSWORD": PASSWORD})
    if kind == "delta":
        return DeltaTarget(kind, f"delta:{tmp_path / 'lake'}")
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return DeltaTarget(kind, f"delta:s3://{bucket}/tables/results", env=env)


def load(target: Target, source: Path, **kw):  # type: ignore[no-untyped-def]
    return resultloader.load(source, target.into, table=target.table, **kw)


def jsonl(*rows: str) -> str:
    return "".join(r + "\n" for r in rows)


# -- last row wins, counts ---------------------------------------------------------------------


def test_the_last_row_of_an_id_wins_within_a_load_and_across_loads(target, write):
    first = write("1.jsonl", jsonl(*(f'{{"id":"k{i % 3}","output":{i}}}' for i in range(10))))
    report = load(target, first)
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (10, 3, 7)
    assert {k: v["output"] for k, v in target.rows().items()} == {"k0": 9, "k1": 7, "k2": 8}
    second = write("2.jsonl", jsonl('{"id":"k1","output":"new"}', '{"id":"k3","output":null}'))
    report = load(target, second)
    assert (report.rows_upserted, report.rows_unchanged, report.duplicates) == (2, 0, 0)
    got = {k: v["output"] for k, v in target.rows().items()}
    assert got == {"k0": 9, "k1": "new", "k2": 8, "k3": None}


def test_the_same_rows_from_jsonl_json_and_csv_land_alike(target, write):
    load(target, write("r.jsonl", jsonl('{"id":"a","output":1}', '{"id":"a","output":2}')))
    load(target, write("r.json", '[{"id":"b","output":1},{"id":"b","output":3}]'))
    load(target, write("r.csv", "id,output\nc,1\nc,4\n"))
    rows = target.rows()
    assert {k: v["output"] for k, v in rows.items()} == {"a": 2, "b": 3, "c": 4}
    assert rows["a"]["metadata"] == {} and rows["a"]["extra"] is None


# -- a re-run changes nothing ------------------------------------------------------------------


def test_a_rerun_changes_nothing_and_keeps_loaded_at(target, write):
    source = write("r.jsonl", jsonl(*(f'{{"id":"k{i}","output":{{"n":{i}}}}}' for i in range(50))))
    load(target, source)
    before = target.rows()
    report = load(target, source)
    assert (report.rows_upserted, report.rows_unchanged) == (0, 50)
    assert target.rows() == before  # _loaded_at included


def test_only_changed_rows_are_replaced(target, write):
    before = [
        '{"id":"url","output":1,"url":""}',
        '{"id":"type","output":"1"}',
        '{"id":"swap","output":"a","url":"b"}',
        '{"id":"extra","output":1,"x":1}',
        '{"id":"meta","output":1,"metadata":{"m":1}}',
        '{"id":"same","output":1,"metadata":{}}',
    ]
    after = [
        '{"id":"url","output":1}',  # "" -> NULL
        '{"id":"type","output":1}',  # a string -> a number
        '{"id":"swap","output":"b","url":"a"}',  # two fields trade values
        '{"id":"extra","output":1,"y":1}',  # an extra field renamed
        '{"id":"meta","output":1,"metadata":{"m":2}}',
        '{"id":"same","output":1}',  # no metadata is stored as {}: unchanged
    ]
    load(target, write("a.jsonl", jsonl(*before)))
    old = target.rows()
    time.sleep(0.01)  # so a rewritten row's _loaded_at differs
    report = load(target, write("b.jsonl", jsonl(*after)))
    assert (report.rows_upserted, report.rows_unchanged) == (5, 1)
    new = target.rows()
    assert new["same"] == old["same"]
    assert new["url"]["url"] is None and new["type"]["output"] == 1
    assert (new["swap"]["output"], new["swap"]["url"]) == ("b", "a")
    assert new["extra"]["extra"] == {"y": 1} and new["meta"]["metadata"] == {"m": 2}
    assert all(new[k]["_loaded_at"] > old[k]["_loaded_at"] for k in new if k != "same")


# -- exact numbers ---------------------------------------------------------------------------

NUMBERS = [
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "0.1000000000000000055511151231257827",
    "123456789012345.67",
    "3.14159265358979323846264338327950288",
    "1e400",
    "12345678901234567e2",
]


def test_numbers_keep_their_exact_value(target, write):
    rows = [f'{{"id":"n{i}","output":{{"v":{v}}},"x":[{v}]}}' for i, v in enumerate(NUMBERS)]
    load(target, write("n.jsonl", jsonl(*rows)))
    got = target.rows()
    for i, text in enumerate(NUMBERS):
        want = Decimal(text)
        assert Decimal(got[f"n{i}"]["output"]["v"]) == want, text
        assert Decimal(got[f"n{i}"]["extra"]["x"][0]) == want, text


# -- one transaction ----------------------------------------------------------------------------


def test_a_failed_load_leaves_the_previous_state_and_a_failed_ledger_row(target, write):
    load(target, write("a.jsonl", jsonl('{"id":"a","output":1}')))
    before = target.rows()
    many = [f'{{"id":"k{i}","output":{i}}}' for i in range(120_000)]  # several batches
    with pytest.raises(ParseError):
        load(target, write("b.jsonl", jsonl('{"id":"a","output":2}', *many, "{broken")))
    assert target.rows() == before
    assert [r["status"] for r in target.ledger()] == ["committed", "failed"]


# -- ledger ------------------------------------------------------------------------------------


def test_the_ledger_records_each_load_without_secrets_of_the_source(target, write, tmp_path):
    source = write("r.jsonl", jsonl('{"id":"a"}', '{"id":"a"}', "oops", '{"id":"b"}'))
    load(target, source, on_error="skip")
    load(target, source, on_error="skip")
    ledger = target.ledger()
    assert [r["status"] for r in ledger] == ["committed", "committed"]
    assert [(r["rows_upserted"], r["rows_unchanged"]) for r in ledger] == [(2, 0), (0, 2)]
    assert {(r["rows_read"], r["duplicates"], r["bad_rows"]) for r in ledger} == {(3, 1, 1)}
    assert ledger[0]["source"] == str(source)
    assert {v["_source"] for v in target.rows().values()} == {str(source)}


def test_an_atomic_load_of_many_names_each_rows_own_source(target, write):
    a = write("a.jsonl", jsonl('{"id":"a1"}', '{"id":"x","output":"a"}', "{bad"))
    b = write("b.jsonl", jsonl('{"id":"x","output":"b"}', "{bad", '{"id":"b1"}', '{"id":"b2"}'))
    c = write("c.jsonl", jsonl('{"id":"c1"}'))
    sources = [str(a), str(b), str(c)]
    options = resultloader.LoadOptions(on_error="quarantine")
    results = resultloader.load_many(
        sources, target.into, options, table=target.table, atomic=True, workers=2
    )
    assert [r.outcome for r in results] == ["loaded"] * 4
    rows = target.rows()
    sources = {k: v["_source"] for k, v in rows.items()}
    assert sources == {"a1": str(a), "x": str(b), "b1": str(b), "b2": str(b), "c1": str(c)}
    assert rows["x"]["output"] == "b"
    assert [(r["status"], r["source"]) for r in target.ledger()] == [
        ("committed", f"{a} (+2 more, atomic)")
    ]
    assert target.reject_sources() == [(str(a), 3), (str(b), 2)]  # each line of its own file


# -- quarantine --------------------------------------------------------------------------------


def test_quarantined_rows_are_kept_with_line_reason_and_raw_text(target, write):
    text = jsonl('{"id":"a"}', '{"bad json', "7", '{"id":"b"}', '{"id":{"x":1}}')
    report = load(target, write("q.jsonl", text), on_error="quarantine")
    assert report.bad_rows == 3
    assert sorted(target.rows()) == ["a", "b"]
    rejects = target.rejects()
    assert [(line, raw) for line, _, raw in rejects] == [
        (2, '{"bad json'),
        (3, "7"),
        (5, '{"id":{"x":1}}'),
    ]
    assert all(reason for _, reason, _ in rejects)
    load(target, write("q.jsonl", text), on_error="quarantine")  # a re-run adds none
    assert target.rejects() == rejects


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "1abc", "_resultloader_loads", "a-b"])
def test_bad_table_names_are_refused_before_anything_runs(target, write, table):
    source = write("r.jsonl", jsonl('{"id":"a"}'))
    with pytest.raises(ValueError, match="table"):
        resultloader.load(source, target.into, table=table)
    assert target.ledger() == []


# -- killed mid-load ---------------------------------------------------------------------------

KILL_ROWS = 24_000
_PAD = "p" * 200  # half the rows are 3 MB, more than the source's read-ahead buffers (2 MiB)


def _write_rows(path: Path, ids: range, salt: int) -> None:
    with path.open("w") as f:
        for i in ids:
            f.write(
                f'{{"id":"k{i}","output":{{"s":{salt},"n":{i}}},"metadata":{{"i":"{_PAD}"}}}}\n'
            )


def _cli_load(target: Target, source: Path | None) -> subprocess.Popen[bytes]:
    """`resultloader load` in a subprocess; with no source it reads JSONL from its stdin."""
    args = [*CLI, "load", str(source or "-"), "--into", target.into, "--table", target.table]
    env = {**os.environ, **target.env}
    return subprocess.Popen(
        [*args, "--format", "jsonl", "-q"],
        env=env,
        stdin=subprocess.PIPE if source is None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _killed_mid_load(target: Target, data: bytes, rng: random.Random) -> None:
    """Feed the load part or all of `data` through a pipe, then SIGKILL it. Once more than
    the source's read-ahead (2 MiB) is written the load has read from the pipe, so it has
    begun: the kill lands inside it (reading, staging, or with all of it sent, the merge)."""
    proc = _cli_load(target, None)
    assert proc.stdin is not None
    sent = int(len(data) * rng.choice([0.8, 1.0]))
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(data[:sent])
        proc.stdin.flush()
        if sent == len(data):
            proc.stdin.close()
    time.sleep(rng.uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def test_a_killed_loads_running_row_is_marked_abandoned_by_the_next_load(target, tmp_path):
    source = tmp_path / "r.jsonl"
    _write_rows(source, range(KILL_ROWS), salt=1)
    data = source.read_bytes()
    proc = _cli_load(target, None)
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # more than the read-ahead: the load has begun
        proc.stdin.write(data[: len(data) * 8 // 10])
        proc.stdin.flush()
    time.sleep(0.3)  # stdin stays open: the load waits for the rest, so it cannot commit
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdin.close()
    assert [r["status"] for r in target.ledger()] == ["running"]
    assert _cli_load(target, source).wait(timeout=120) == 0
    ledger = target.ledger()
    assert [r["status"] for r in ledger] == ["abandoned", "committed"]
    assert "killed" in ledger[0]["error"] and ledger[1]["error"] is None


def test_sigkill_mid_load_leaves_the_previous_state_or_the_complete_load(target, tmp_path):
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    _write_rows(old, range(KILL_ROWS), salt=1)
    # the second half of the ids change: loading `old` again restores the previous state
    _write_rows(new, range(KILL_ROWS // 2, KILL_ROWS), salt=2)
    assert _cli_load(target, old).wait(timeout=120) == 0
    previous = target.checksum()
    assert _cli_load(target, new).wait(timeout=120) == 0
    complete = target.checksum()
    assert complete != previous
    rng = random.Random(14)
    for _ in range(3):
        assert _cli_load(target, old).wait(timeout=120) == 0
        assert target.checksum() == previous
        _killed_mid_load(target, new.read_bytes(), rng)
        assert target.checksum() in (previous, complete), "a partial load is visible"
    statuses = [r["status"] for r in target.ledger()]
    # the kills landed inside loads, whose rows say so (DuckDB: the next load into the file
    # marks a killed load's row abandoned)
    assert {"running", "abandoned"} & set(statuses)
    assert _cli_load(target, new).wait(timeout=120) == 0  # the next run completes it
    assert target.checksum() == complete
    assert target.ledger()[-1]["status"] == "committed"


# -- history -----------------------------------------------------------------------------------


def test_history_lists_the_targets_loads_and_one_loads_rejects(target, write):
    text = jsonl('{"id":"a"}', "nope", '{"id":"b"}')
    quarantined = write("q.jsonl", text)
    load(target, quarantined, on_error="quarantine")
    load(target, write("r.jsonl", jsonl('{"id":"c"}')))
    args = [*CLI, "history", "--into", target.into, "--json"]
    env = {**os.environ, **target.env}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    loads = [json.loads(line) for line in done.stdout.splitlines()]
    # a Postgres ledger lists every table of the database: this test's loads are from its dir
    loads = [x for x in loads if x["source"].startswith(str(quarantined.parent))]
    assert [(x["source"].rsplit("/", 1)[-1], x["status"]) for x in loads] == [
        ("r.jsonl", "committed"),
        ("q.jsonl", "committed"),
    ]
    one = subprocess.run(
        [*args[:2], *args[2:4], loads[1]["load_id"][:8], *args[4:]],
        capture_output=True,
        text=True,
        env=env,
    )
    assert one.returncode == 0, one.stderr
    assert [(r["line"], r["raw"]) for r in json.loads(one.stdout)["rejects"]] == [(2, "nope")]


# -- re-runs skip what the ledger holds ----------------------------------------------------------


def test_a_rerun_of_many_sources_skips_the_committed_unchanged_ones(target, write):
    a = write("a.jsonl", jsonl('{"id":"k1","output":"a"}', '{"id":"k2","output":"a"}'))
    b = write("b.jsonl", jsonl('{"id":"k2","output":"b"}'))
    sources = [str(a), str(b)]

    def outcomes() -> list[str]:
        results = resultloader.load_many(sources, target.into, table=target.table)
        return [r.outcome for r in results]

    assert outcomes() == ["loaded", "loaded"]
    assert outcomes() == ["skipped", "skipped"]
    committed = [r for r in target.ledger() if r["status"] == "committed"]
    assert len(committed) == 2  # the skipped sources left no ledger row
    b.write_text(jsonl('{"id":"k2","output":"b2"}', '{"id":"k3","output":"b2"}'))
    assert outcomes() == ["skipped", "loaded"]
    assert {k: v["output"] for k, v in target.rows().items()} == {"k1": "a", "k2": "b2", "k3": "b2"}


def test_a_rerun_of_many_jobs_skips_the_committed_ones(target, oai):  # noqa: F811
    for n in (1, 2):
        serve_batch(oai, n)

    def outcomes(jobs: list[str]) -> dict[str, str]:
        sink = sink_for(target.into, target.table)
        results = resultloader.ingest_many("openai-batch", jobs, sink)
        return {r.job: r.outcome for r in results}

    assert outcomes(["batch_1"]) == {"batch_1": "loaded"}
    assert outcomes(["batch_1", "batch_2"]) == {"batch_1": "skipped", "batch_2": "loaded"}
    assert oai.hits("/v1/files/file-out-1/content") == 1  # the skipped job was not downloaded
    assert set(target.rows()) == {"b1-r1", "b1-r2", "b2-r1", "b2-r2"}


# -- loads that fail before reading (issue 20, point 4) -----------------------------------------


def _no_such_host(monkeypatch) -> None:
    """Names under `.invalid` do not resolve, as for a mistyped host, without asking the
    network's DNS server (the tests reach no address but loopback)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections to it are refused, and no other
    process can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_loads_that_cannot_open_their_source_leave_a_failed_ledger_row(
    target,
    tmp_path,
    monkeypatch,
    refusing_port,
    oai,  # noqa: F811
):
    _no_such_host(monkeypatch)
    fast = HttpPolicy(backoff=0.01)
    with FaultyServer() as server:
        missing = server.url("/missing.jsonl")
        refused = f"http://127.0.0.1:{refusing_port}/r.jsonl"
        unknown = "https://results.invalid/r.jsonl"
        absent = str(tmp_path / "absent.jsonl")
        for source in (f"{missing}?X-Amz-Signature=SECRET", refused, unknown, absent):
            with pytest.raises(resultloader.DownloadError):
                resultloader.load(source, target.into, table=target.table, http=fast)
        for workers, atomic in ((1, False), (2, False), (2, True)):
            with pytest.raises(resultloader.DownloadError):
                resultloader.load_many(
                    [missing], target.into, table=target.table, workers=workers, atomic=atomic
                )
    serve_batch(oai, 9)
    oai.script("/v1/files/file-out-9/content", Reply(404, {"error": "no such file"}))
    with pytest.raises(resultloader.DownloadError):
        resultloader.ingest("openai-batch", "batch_9", sink_for(target.into, target.table))
    ledger = target.ledger()
    assert [(r["status"], r["source"]) for r in ledger] == [
        ("failed", missing),
        ("failed", refused),
        ("failed", unknown),
        ("failed", absent),
        ("failed", missing),
        ("failed", missing),
        ("failed", missing),  # an atomic load of one source is named by it
        ("failed", "openai-batch:batch_9"),
    ]
    reasons = ["HTTP 404", "Connection refused", "Name or service not known", "no such file"]
    reasons += ["HTTP 404"] * 4
    for row, reason in zip(ledger, reasons, strict=True):
        assert reason in row["error"], row
        assert row["rows_read"] is None and "SECRET" not in str(row)
    assert target.rows() == {}
    for as_json in (True, False):
        done = subprocess.run(
            [*CLI, "history", "--into", target.into, "--limit", "1000"] + ["--json"] * as_json,
            capture_output=True,
            text=True,
            env={**os.environ, **target.env},
        )
        assert done.returncode == 0, done.stderr
        if as_json:  # a Postgres ledger lists every table of the database: this test's only
            shown = [json.loads(line) for line in done.stdout.splitlines()]
            ours = [
                x for x in shown if target.kind.startswith("delta") or x["target"] == target.table
            ]
            assert [(x["source"], x["error"]) for x in ours][::-1] == [
                (r["source"], r["error"]) for r in ledger
            ]
        else:
            assert any(refused in line and " failed " in line for line in done.stdout.splitlines())

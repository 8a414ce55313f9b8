"""The sink contract (resultloader.testing.SinkContract: the guarantees of sinks/__init__.py)
run against every table sink of ours: DuckDB, PostgreSQL (a real server on loopback; both also
with a table in a schema) and Delta Lake (a local path and moto's S3), as a sink's author runs
it against theirs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

import resultloader
from resultloader.sinks.registry import sink_for
from resultloader.sources.download import HttpPolicy
from resultloader.testing import ContractTarget, Reply, SinkContract
from resultloader.testing.contract import jsonl
from tests.support.faulty_http import FaultyServer
from tests.support.pg_server import PASSWORD
from tests.support.provider_apis import serve_batch
from tests.support.s3 import DELTA_S3_ENV as S3_ENV
from tests.support.sink_targets import (
    DeltaTarget,
    DuckDBTarget,
    IcebergTarget,
    PostgresTarget,
    iceberg_env,
)

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]

# duckdb-schema and postgres-schema: a table in a schema of its own (`--table staging.results`)
KINDS = ["duckdb", "duckdb-schema", "postgres", "postgres-schema", "delta", "delta-s3"]
KINDS += ["iceberg", "iceberg-s3"]


def iceberg_s3(endpoint: str) -> dict[str, str]:
    """pyiceberg's S3 settings for moto's server (its FileIO reads no AWS_* variables)."""
    return {
        "ENDPOINT": endpoint,
        "ACCESS_KEY_ID": "testing",
        "SECRET_ACCESS_KEY": "testing",
        "REGION": "us-east-1",
    }


class TestOurSinks(SinkContract):
    @pytest.fixture(params=KINDS)
    def target(self, request, tmp_path, monkeypatch) -> ContractTarget:
        kind = request.param
        if kind.startswith("duckdb"):
            table = "staging.results" if kind == "duckdb-schema" else "results"
            return DuckDBTarget(str(tmp_path / "r.duckdb"), table)
        if kind.startswith("postgres"):
            url = request.getfixturevalue("postgres_url")
            monkeypatch.setenv("PGPASSWORD", PASSWORD)
            table = f"t_{uuid.uuid4().hex[:10]}"
            if kind == "postgres-schema":
                table = f"s_{uuid.uuid4().hex[:10]}.{table}"
            return PostgresTarget(url, table, env={"PGPASSWORD": PASSWORD})
        if kind == "delta":
            return DeltaTarget(f"delta:{tmp_path / 'lake'}")
        if kind == "iceberg":
            env = iceberg_env("lake", str(tmp_path), str(tmp_path / "warehouse"))
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return IcebergTarget("iceberg:lake/staging.results", env=env)
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
        bucket = f"lake-{uuid.uuid4().hex[:12]}"
        if kind == "iceberg-s3":
            env |= iceberg_env("lake", str(tmp_path), f"s3://{bucket}/warehouse")
            env |= {f"PYICEBERG_CATALOG__LAKE__S3__{k}": v for k, v in iceberg_s3(endpoint).items()}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        if kind == "iceberg-s3":
            return IcebergTarget("iceberg:lake/staging.results", env=env)
        return DeltaTarget(f"delta:s3://{bucket}/tables/results", env=env)

    def test_a_rerun_of_many_jobs_skips_the_committed_ones(self, target, oai):
        for n in (1, 2):
            serve_batch(oai, n)

        def outcomes(jobs: list[str]) -> dict[str, str]:
            sink = sink_for(target.into, target.table)  # ingest_many takes no table
            results = resultloader.ingest_many("openai-batch", jobs, sink)
            return {r.job: r.outcome for r in results}

        assert outcomes(["batch_1"]) == {"batch_1": "loaded"}
        assert outcomes(["batch_1", "batch_2"]) == {"batch_1": "skipped", "batch_2": "loaded"}
        assert oai.hits("/v1/files/file-out-1/content") == 1  # the skipped job was not downloaded
        assert set(target.rows()) == {"b1-r1", "b1-r2", "b2-r1", "b2-r2"}

    def test_an_atomic_load_of_many_names_each_rows_own_source(self, target, write):
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

    def test_loads_that_cannot_open_their_source_leave_a_failed_ledger_row(
        self,
        target,
        tmp_path,
        monkeypatch,
        refusing_port,
        oai,
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
                [*CLI, "history", "--from", target.into, "--limit", "1000"] + ["--json"] * as_json,
                capture_output=True,
                text=True,
                env={**os.environ, **target.env},
            )
            assert done.returncode == 0, done.stderr
            if as_json:  # a Postgres ledger lists every table of the database: this test's only
                shown = [json.loads(line) for line in done.stdout.splitlines()]
                ours = [
                    x
                    for x in shown
                    if isinstance(target, DeltaTarget) or x["target"] == target.ledger_target()
                ]
                assert [(x["source"], x["error"]) for x in ours][::-1] == [
                    (r["source"], r["error"]) for r in ledger
                ]
            else:
                assert any(
                    refused in line and " failed " in line for line in done.stdout.splitlines()
                )


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

"""The sink contract (resultloader.testing.SinkContract: the guarantees of sinks/__init__.py)
run against every table sink of ours: DuckDB, PostgreSQL (a real server on loopback; both also
with a table in a schema) and Delta Lake (a local path and moto's S3), as a sink's author runs
it against theirs.
"""

from __future__ import annotations

import uuid

import pytest

import resultloader
from resultloader.sinks.registry import sink_for
from resultloader.testing import ContractTarget, SinkContract
from tests.pg_server import PASSWORD
from tests.sink_targets import DeltaTarget, DuckDBTarget, PostgresTarget
from tests.test_jobs import serve_batch
from tests.test_providers import oai  # noqa: F401  (a fixture: the fake OpenAI API)

# duckdb-schema and postgres-schema: a table in a schema of its own (`--table staging.results`)
KINDS = ["duckdb", "duckdb-schema", "postgres", "postgres-schema", "delta", "delta-s3"]
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
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
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        bucket = f"lake-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        return DeltaTarget(f"delta:s3://{bucket}/tables/results", env=env)

    def test_a_rerun_of_many_jobs_skips_the_committed_ones(self, target, oai):  # noqa: F811
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

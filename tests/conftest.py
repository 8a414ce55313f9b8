"""Fixtures for the whole suite: files in tmp_path, a PostgreSQL server, moto's S3 server and
buckets on it, and the OpenAI and Anthropic batch APIs on loopback. Helpers live in
tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resultloader.testing import FakeApi
from tests.support.provider_apis import AKEY, OKEY
from tests.support.s3 import S3_ENV


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text_or_bytes) -> path of a new file in tmp_path."""

    def _write(name: str, data: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return _write


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for the session (tests/support/pg_server.py):
    its URL without the password, which is tests.support.pg_server.PASSWORD."""
    from tests.support.pg_server import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback for the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# -- the OpenAI and Anthropic batch APIs on loopback (the provider, job and sink tests use them)


@pytest.fixture
def oai(monkeypatch):
    fake = FakeApi({"Authorization": f"Bearer {OKEY}"})
    monkeypatch.setenv("OPENAI_API_KEY", OKEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.api_url + "/v1")
    yield fake
    fake.close()
    assert fake.leaks == []


@pytest.fixture
def ant(monkeypatch):
    fake = FakeApi({"x-api-key": AKEY, "anthropic-version": "2023-06-01"})
    monkeypatch.setenv("ANTHROPIC_API_KEY", AKEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.api_url)
    yield fake
    fake.close()
    assert fake.leaks == []


# -- S3 buckets on the session's moto server


@pytest.fixture
def s3_server(s3_endpoint: str) -> str:
    """The session's moto S3 server (conftest.s3_endpoint), by the name these tests use."""
    return s3_endpoint


@pytest.fixture
def bucket(s3_server, monkeypatch) -> Iterator[tuple[str, object]]:
    """A fresh bucket; boto3 (inside smart_open) finds the server by AWS_ENDPOINT_URL_S3."""
    import uuid

    import boto3

    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=s3_server)
    name = f"results-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name, client

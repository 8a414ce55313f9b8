from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from resultloader import RowBatch

SEED_ROWS = (
    '{"id":"product_12345","output":{"actions":[],"labels":[{"label":"policy.example_violation"}],'
    '"fields":{}},"metadata":{"source":"backfill"},"url":"https://app.safetykit.com/..."}\n'
    '{"id":"product_67890","output":{"actions":[{"action":"manual_review","queue":"high_risk"}],'
    '"labels":[],"fields":{}},"metadata":{},"url":"https://app.safetykit.com/..."}\n'
)


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text_or_bytes) -> path of a new file in tmp_path."""

    def _write(name: str, data: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return _write


def query(db: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on the DuckDB file `db`, read-only, and close it again (loads need the lock)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def merge_batches(batches: Iterable[object]) -> RowBatch:
    """One RowBatch of every row and reject a parser yielded, in order."""
    merged = RowBatch()
    for batch in batches:
        assert isinstance(batch, RowBatch)
        merged.extend(batch)
    return merged


def exact_numbers(value: Any) -> Any:
    """Floats as the Decimal of their shortest text, so comparisons are of exact values."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact_numbers(v) for v in value]
    return value


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for the session (tests/pg_server.py): its URL
    without the password, which is tests.pg_server.PASSWORD."""
    from tests.pg_server import postgres_server

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

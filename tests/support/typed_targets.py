"""The three table sinks as targets of the typed-column tests: a fresh sink for each load, and
SQL over what the engine stores (`results`, `results_rejects`, `_resultloader_loads`), each
read back with the engine's own client (a Delta table through deltalake, queried by DuckDB)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import Sink

from .duckdb_files import query

KINDS = ["duckdb", "postgres", "delta"]


class TypedTarget:
    def __init__(self, kind: str, tmp_path: Path, postgres_url: str | None = None) -> None:
        self.kind = kind
        self.db = tmp_path / f"{uuid.uuid4().hex[:8]}.duckdb"
        self.lake = tmp_path / f"lake-{uuid.uuid4().hex[:8]}"
        self.schema = f"s_{uuid.uuid4().hex[:10]}"
        self.postgres_url = postgres_url

    def tmp_path(self) -> Path:
        return self.db.parent

    def another(self) -> TypedTarget:
        """A target of the same kind, with a table of its own."""
        return TypedTarget(self.kind, self.tmp_path(), self.postgres_url)

    @property
    def into(self) -> str:
        """The target as the command line names it (--into)."""
        if self.kind == "duckdb":
            return str(self.db)
        if self.kind == "delta":
            return f"delta:{self.lake}"
        assert self.postgres_url is not None
        return self.postgres_url

    @property
    def table(self) -> str:
        return f"{self.schema}.results" if self.kind == "postgres" else "results"

    def sink(self) -> Sink:
        if self.kind == "duckdb":
            return resultloader.DuckDBSink(self.db)
        if self.kind == "delta":
            sink: Sink = resultloader.DeltaSink(self.lake)
            return sink
        assert self.postgres_url is not None
        postgres: Sink = resultloader.PostgresSink(self.postgres_url, self.table)
        return postgres

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "duckdb":
            return query(self.db, sql) if self.db.exists() else []
        if self.kind == "delta":
            return self._delta(sql)
        import psycopg

        from tests.support.pg_server import PASSWORD

        with psycopg.connect(self.postgres_url or "", password=PASSWORD) as conn:
            conn.execute(f"SET search_path = {self.schema}")  # type: ignore[arg-type]
            return [tuple(r) for r in conn.execute(sql).fetchall()]  # type: ignore[arg-type]

    def _delta(self, sql: str) -> list[tuple[Any, ...]]:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        tables = {
            "results": self.lake,
            "results_rejects": self.lake / "_rejects",
            "_resultloader_loads": self.lake / "_resultloader_loads",
        }
        for name, path in tables.items():
            with contextlib.suppress(TableNotFoundError):
                con.register(name, DeltaTable(str(path)).to_pyarrow_table())
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


@pytest.fixture(params=KINDS)
def target(request, tmp_path, monkeypatch) -> TypedTarget:
    if request.param != "postgres":
        return TypedTarget(request.param, tmp_path)
    from tests.support.pg_server import PASSWORD

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return TypedTarget("postgres", tmp_path, request.getfixturevalue("postgres_url"))

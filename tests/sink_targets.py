"""The three table sinks behind one test interface: where a load goes (`into`, as `--into` and
`load(src, TARGET)` take it) and what the engine holds afterwards, read back with its own client.

Values are decoded with exact numbers (Decimal for decimals, int for integers), so a sink that
keeps `1e400` as `1000...0` (PostgreSQL's NUMERIC) and one that keeps the text agree.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

Row = dict[str, Any]


def decode(text: str | None) -> Any:
    return None if text is None else json.loads(text, parse_float=Decimal)


def _row(r: tuple[Any, ...]) -> tuple[str, Row]:
    row_id, output, metadata, url, extra, source, loaded_at = r
    return row_id, {
        "output": decode(output),
        "metadata": decode(metadata),
        "url": url,
        "extra": decode(extra),
        "_source": source,
        "_loaded_at": loaded_at,
    }


def _one_row_an_id(rows: list[tuple[str, Row]]) -> dict[str, Row]:
    found = dict(rows)
    assert len(found) == len(rows), "an id is stored more than once"
    return found


@dataclass
class Target:
    kind: str
    into: str
    table: str = "results"
    env: dict[str, str] = field(default_factory=dict)  # for a CLI in a subprocess

    def rows(self) -> dict[str, Row]:
        raise NotImplementedError

    def ledger(self) -> list[Row]:
        """Ledger rows of this table, oldest first."""
        raise NotImplementedError

    def rejects(self) -> list[tuple[int, str, str]]:
        """(line, reason, raw) of the kept rejects, by line."""
        raise NotImplementedError

    def reject_sources(self) -> list[tuple[str, int]]:
        """(_source, line) of the kept rejects, sorted."""
        raise NotImplementedError

    def checksum(self) -> str:
        """The table's content (not `_loaded_at`), as one digest."""
        rows = sorted(
            (k, json.dumps({c: v[c] for c in ("output", "metadata", "url", "extra")}, default=str))
            for k, v in self.rows().items()
        )
        return hashlib.sha256(repr(rows).encode()).hexdigest()


_LEDGER_COLUMNS = (
    "status, source, rows_read, rows_upserted, rows_unchanged, duplicates, bad_rows, error"
)


class SqlTarget(Target):
    """DuckDB and PostgreSQL: the same queries, JSON read back as text."""

    as_text = ""  # PostgreSQL's JSONB needs a cast to text

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def rows(self) -> dict[str, Row]:
        t = self.as_text
        got = self._query(
            f"SELECT id, output{t}, metadata{t}, url, extra{t}, _source, _loaded_at"
            f" FROM {self.table}"
        )
        return _one_row_an_id([_row(r) for r in got])

    def ledger(self) -> list[Row]:
        got = self._query(
            f"SELECT {_LEDGER_COLUMNS} FROM _resultloader_loads"
            f" WHERE target = '{self.table}' ORDER BY started_at"
        )
        return [dict(zip(_LEDGER_COLUMNS.split(", "), r, strict=True)) for r in got]

    def rejects(self) -> list[tuple[int, str, str]]:
        return sorted(self._query(f"SELECT line, reason, raw FROM {self.table}_rejects"))

    def reject_sources(self) -> list[tuple[str, int]]:
        return sorted(self._query(f"SELECT _source, line FROM {self.table}_rejects"))


class DuckDBTarget(SqlTarget):
    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not os.path.exists(self.into):
            return []
        con = duckdb.connect(self.into, read_only=True)
        try:
            return con.execute(sql).fetchall()
        except duckdb.CatalogException:
            return []
        finally:
            con.close()


class PostgresTarget(SqlTarget):
    as_text = "::text"

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.into, password=self.env["PGPASSWORD"]) as conn:
            try:
                return conn.execute(sql).fetchall()  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable:
                return []


class DeltaTarget(Target):
    storage_options: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return self.into.removeprefix("delta:")

    def _read(self, path: str) -> list[Row]:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(path, storage_options=self.storage_options)
        except TableNotFoundError:
            return []
        return table.to_pyarrow_table().to_pylist()  # type: ignore[no-any-return]

    def version(self) -> int:
        from deltalake import DeltaTable

        return DeltaTable(self.path, storage_options=self.storage_options).version()

    def rows(self) -> dict[str, Row]:
        columns = ("id", "output", "metadata", "url", "extra", "_source", "_loaded_at")
        return _one_row_an_id([_row(tuple(r[c] for c in columns)) for r in self._read(self.path)])

    def ledger(self) -> list[Row]:
        rows = sorted(self._read(f"{self.path}/_resultloader_loads"), key=lambda r: r["started_at"])
        return [{c: r[c] for c in _LEDGER_COLUMNS.split(", ")} for r in rows]

    def rejects(self) -> list[tuple[int, str, str]]:
        return sorted(
            (r["line"], r["reason"], r["raw"]) for r in self._read(f"{self.path}/_rejects")
        )

    def reject_sources(self) -> list[tuple[str, int]]:
        return sorted((r["_source"], r["line"]) for r in self._read(f"{self.path}/_rejects"))

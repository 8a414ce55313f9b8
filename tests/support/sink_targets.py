"""Our three table sinks as the sink contract's targets (resultloader.testing.ContractTarget):
what each engine holds after a load, read back with the engine's own client.

Values are decoded with exact numbers (Decimal for decimals, int for integers), so a sink that
keeps `1e400` as `1000...0` (PostgreSQL's NUMERIC) and one that keeps the text agree.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb

from resultloader.testing import ContractTarget
from resultloader.testing.contract import decode

Row = dict[str, Any]


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


class SqlTarget(ContractTarget):
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

    def has_rejects_table(self) -> bool:
        schema, _, name = self.table.rpartition(".")
        found = self._query(
            "SELECT count(*) FROM information_schema.tables"
            f" WHERE table_schema = {self.schema(schema)} AND table_name = '{name}_rejects'"
        )
        return bool(found and found[0][0])

    def schema(self, given: str) -> str:
        return f"'{given}'" if given else "current_schema()"

    def reject_sources(self) -> list[tuple[str, int]]:
        """(_source, line) of the kept rejects, sorted."""
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


class DeltaTarget(ContractTarget):
    storage_options: dict[str, str] | None = None

    def ledger_target(self) -> str:
        return self.path  # a Delta ledger names its table by its location

    @property
    def path(self) -> str:
        return self.into.removeprefix("delta:")

    def _table(self, path: str) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(path, storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    def version(self) -> int:
        return int(self._table(self.path).version())

    def rows(self) -> dict[str, Row]:
        columns = ("id", "output", "metadata", "url", "extra", "_source", "_loaded_at")
        table = self._table(self.path)
        found = [] if table is None else table.to_pyarrow_table().to_pylist()
        return _one_row_an_id([_row(tuple(r[c] for c in columns)) for r in found])

    def has_rejects_table(self) -> bool:
        return self._table(f"{self.path}/_rejects") is not None

    def reject_sources(self) -> list[tuple[str, int]]:
        """(_source, line) of the kept rejects, sorted."""
        table = self._table(f"{self.path}/_rejects")
        found = [] if table is None else table.to_pyarrow_table().to_pylist()
        return sorted((r["_source"], r["line"]) for r in found)


class IcebergTarget(ContractTarget):
    """`iceberg:CATALOG/NAMESPACE.TABLE`, read back with pyiceberg through the same catalog
    (configured by the PYICEBERG_CATALOG__... variables of `env`)."""

    def ledger_target(self) -> str:
        return self.name  # NAMESPACE.TABLE

    @property
    def catalog_name(self) -> str:
        return self.into.removeprefix("iceberg:").partition("/")[0]

    @property
    def name(self) -> str:
        return self.into.partition("/")[2]

    def _table(self, name: str) -> Any:
        from pyiceberg.catalog import load_catalog
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.utils.config import Config

        config = Config().get_catalog_config(self.catalog_name) or {}
        try:
            return load_catalog(self.catalog_name, **config).load_table(name)
        except NoSuchTableError:
            return None

    def snapshots(self) -> int:
        table = self._table(self.name)
        return 0 if table is None else len(table.snapshots())

    def rows(self) -> dict[str, Row]:
        columns = ("id", "output", "metadata", "url", "extra", "_source", "_loaded_at")
        table = self._table(self.name)
        found = [] if table is None else table.scan().to_arrow().to_pylist()
        return _one_row_an_id([_row(tuple(r[c] for c in columns)) for r in found])

    def has_rejects_table(self) -> bool:
        return self._table(f"{self.name}_rejects") is not None

    def reject_sources(self) -> list[tuple[str, int]]:
        """(_source, line) of the kept rejects, sorted."""
        table = self._table(f"{self.name}_rejects")
        found = [] if table is None else table.scan().to_arrow().to_pylist()
        return sorted((r["_source"], r["line"]) for r in found)


def iceberg_env(catalog: str, directory: str, warehouse: str) -> dict[str, str]:
    """The variables that configure pyiceberg's SQL catalog `catalog` on SQLite in
    `directory`, its tables' files under `warehouse` (a path, or s3://... with S3's own
    variables given apart)."""
    prefix = f"PYICEBERG_CATALOG__{catalog.upper()}__"
    return {
        prefix + "TYPE": "sql",
        prefix + "URI": f"sqlite:///{directory}/catalog.db",
        prefix + "WAREHOUSE": warehouse if "://" in warehouse else f"file://{warehouse}",
    }

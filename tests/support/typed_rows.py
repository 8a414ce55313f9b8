"""The typed columns a load stored in a DuckDB table, by row id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from resultloader.providers import get_provider


def typed_rows(db: Path, provider: str, table: str = "results") -> dict[str, dict[str, Any]]:
    """id -> {column: value} of every row, for each of `provider`'s typed columns."""
    names = [c.name for c in get_provider(provider).columns]
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute(f"SELECT id, {', '.join(names)} FROM {table}").fetchall()
    finally:
        con.close()
    return {row_id: dict(zip(names, values, strict=True)) for row_id, *values in found}

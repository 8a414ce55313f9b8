"""Reading a DuckDB file the suite loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def query(db: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on the DuckDB file `db`, read-only, and close it again (loads need the lock)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()

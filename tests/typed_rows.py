"""A provider's typed columns over rows a load stored, computed as a sink computes them: the
rows staged in DuckDB, their values extracted (`values_sql`, `fix_inexact`) and cast
(`typed_sql`) by resultloader.sinks.columns."""

from __future__ import annotations

from typing import Any

import duckdb

from resultloader.parse._rows import dumps
from resultloader.providers import get_provider
from resultloader.sinks.columns import fix_inexact, typed_sql, values_sql
from resultloader.testing import MemorySink

_STAGE = (
    "CREATE TABLE s (seq BIGINT, id VARCHAR, output JSON, metadata JSON, url VARCHAR, extra JSON)"
)


def typed_rows(sink: MemorySink, provider: str) -> dict[str, dict[str, Any]]:
    """id -> {column: value} of every row in `sink`, by `provider`'s columns; a value that
    does not fit its column fails the test, naming it."""
    columns = get_provider(provider).columns
    con = duckdb.connect()
    con.execute(_STAGE)
    for seq, (row_id, row) in enumerate(sink.rows.items()):
        fields = [row.get(k) for k in ("output", "metadata", "url", "extra")]
        json_text = [None if v is None else dumps(v, exact=True) for v in fields]
        output, metadata, _, extra = json_text
        con.execute(
            "INSERT INTO s VALUES (?, ?, ?, ?, ?, ?)",
            [seq, row_id, output, metadata, fields[2], extra],
        )
    con.execute(f"CREATE TABLE staged AS SELECT *, {values_sql(columns)} FROM s")
    fix_inexact(con, "staged", columns)
    found = con.execute(f"SELECT id, {typed_sql(columns)} FROM staged").fetchall()
    names = [c.name for c in columns]
    typed: dict[str, dict[str, Any]] = {}
    for row_id, *values, bad in found:
        assert bad is None, bad
        typed[row_id] = dict(zip(names, values, strict=True))
    return typed

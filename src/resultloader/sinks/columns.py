"""Typed columns in DuckDB SQL, over a load's staged rows (every sink stages through DuckDB).

Two steps, so that every route and every sink type a value the same way:
- `values_sql`: each column's value as exact JSON text (`_v0`, `_v1`, ...), extracted by
  DuckDB's JSON functions. Those keep strings, integers and big integers as written, but read
  other numbers as doubles: a field whose text holds a number a double would change (the same
  test as the native insert's) has its values extracted in Python instead (`exact_values`).
- `typed_sql`: each value cast to its column's type, exactly, and `_bad`: the first column
  whose value does not fit, with the value, for the row's rejection. A missing path or a JSON
  null is NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from .._columns import ROW_FIELDS, Column, decimal_digits, split_path
from ..parse._rows import decode_exact, dumps

# A number DuckDB's JSON reader would change (not only re-spell): 16+ significant digits with a
# fraction or an exponent, or an exponent of 3+ digits (1e400, 1e-400).
INEXACT_NUMBER = r"[0-9]{16,}[.eE]|[0-9.]{17,}|[eE][+-]?[0-9]{3,}"
_INT = r"^-?(0|[1-9][0-9]*)$"
_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_ZONE = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def json_path(steps: Sequence[str]) -> str:
    """`$.a[0]."b c"`: the steps of a column path as DuckDB's JSONPath."""
    parts = []
    for step in steps:
        if step.startswith("["):
            parts.append(step)
        elif step.replace("_", "a").isalnum():
            parts.append(f".{step}")
        else:
            parts.append('."' + step.replace('"', '\\"') + '"')
    return "$" + "".join(parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path_value(path: str) -> str:
    field, steps = split_path(path)
    if not steps:
        return f"to_json({field})" if field in ("id", "url") else f"nullif({field}, 'null')"
    found = f"json_extract({field}, {_literal(json_path(steps))})"
    if "[*]" in steps:  # every item: a JSON array, NULL when there is none
        return f"CASE WHEN len({found}) > 0 THEN to_json({found}) END"
    return f"nullif({found}, 'null')"


def value_sql(column: Column) -> str:
    """The column's value as JSON (NULL: missing or null), over the row's columns."""
    if column.sql is not None:
        return f"nullif(to_json({column.sql}), 'null')"
    found = [_path_value(path) for path in column.paths]
    return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"


def values_sql(columns: Sequence[Column]) -> str:
    """`value AS _v0, ...`, to select beside the row's columns."""
    return ", ".join(f"{value_sql(c)}::JSON AS _v{i}" for i, c in enumerate(columns))


def fields_read(columns: Sequence[Column]) -> tuple[str, ...]:
    """The JSON fields of the row whose text `exact_values` must see (paths into them)."""
    found = {split_path(p)[0] for c in columns for p in c.paths}
    return tuple(f for f in ("output", "metadata", "extra") if f in found)


def suspect_sql(columns: Sequence[Column]) -> str | None:
    """A condition on a staged row: a field the paths read holds a number DuckDB would
    change, so its values come from `exact_values`; None when no path reads such a field.
    With a decimal column, any exponent counts: DuckDB would write 1e1 as 10.0, and a decimal
    takes only plain digits, on every row alike."""
    fields = fields_read(columns)
    pattern = INEXACT_NUMBER
    if any(decimal_digits(c.type) for c in columns):
        pattern += "|[0-9][eE]"
    tests = [f"regexp_matches({f}::VARCHAR, {_literal(pattern)})" for f in fields]
    return " OR ".join(tests) or None


def fix_inexact(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[Column]) -> int:
    """Replace the values `values_sql` put in `table` (`_v0`, ...) by `exact_values` on the
    rows `suspect_sql` picks (few: long decimals are rare); how many rows."""
    suspect = suspect_sql(columns)
    if suspect is None:
        return 0
    rows = con.execute(
        f"SELECT seq, id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR FROM {table}"
        f" WHERE {suspect}"
    ).fetchall()
    names = [f"_v{i}" for i, c in enumerate(columns) if c.sql is None]
    assignments = ", ".join(f"{name} = ?::JSON" for name in names)
    for seq, *fields in rows:
        values = exact_values(columns, dict(zip(ROW_FIELDS, fields, strict=True)))
        kept = [v for v, c in zip(values, columns, strict=True) if c.sql is None]
        con.execute(f"UPDATE {table} SET {assignments} WHERE seq = ?", [*kept, seq])
    return len(rows)


def exact_values(columns: Sequence[Column], row: Mapping[str, str | None]) -> list[str | None]:
    """The columns' values as exact JSON text, from the row's fields as stored (JSON text), by
    Python's exact decoder: what `values_sql` gives, without DuckDB's doubles. `sql` columns
    are left to DuckDB (None here): they read no number of the row as it was written."""
    decoded = {
        name: text if name in ("id", "url") or text is None else decode_exact(text)
        for name, text in row.items()
    }
    values: list[str | None] = []
    for column in columns:
        value = None
        for path in column.paths:
            value = _walk(decoded, path)
            if value is not None:
                break
        values.append(None if value is None else dumps(value, exact=True))
    return values


def _walk(decoded: Mapping[str, Any], path: str) -> Any:
    field, steps = split_path(path)
    nodes: list[Any] = [decoded.get(field)]
    for step in steps:
        nodes = [n for node in nodes for n in _step(node, step)]
    if "[*]" in steps:
        found = [n for n in nodes if n is not None]
        return found or None
    return nodes[0] if nodes else None


def _step(node: Any, step: str) -> list[Any]:
    if step == "[*]":
        return list(node) if isinstance(node, list) else []
    if step.startswith("["):
        index = int(step[1:-1])
        return [node[index]] if isinstance(node, list) and index < len(node) else []
    return [node[step]] if isinstance(node, dict) and step in node else []


def typed_sql(columns: Sequence[Column]) -> str:
    """`cast AS name, ..., reason AS _bad` over the values `_v0, ...` (JSON)."""
    casts = [f"{_cast(c.type, f'_v{i}')} AS {c.name}" for i, c in enumerate(columns)]
    checks = [_bad(c, f"_v{i}") for i, c in enumerate(columns)]
    return ", ".join([*casts, f"coalesce({', '.join(checks)}) AS _bad"])


def _text(v: str) -> str:
    return f"{v}::VARCHAR"  # the value's JSON text, exactly as stored


def _cast(column_type: str, v: str) -> str:
    """The value as `column_type`, NULL where it does not fit (then `_bad` says why)."""
    t = _text(v)
    if column_type == "text":
        return (
            f"CASE json_type({v}) WHEN 'VARCHAR' THEN {v}->>'$' WHEN 'ARRAY' THEN "
            f"array_to_string(list_transform(json_extract({v}, '$[*]'), lambda x: "
            f"CASE json_type(x) WHEN 'VARCHAR' THEN x->>'$' ELSE x::VARCHAR END), '') "
            f"ELSE {t} END"
        )
    if column_type == "json":
        return v
    if column_type == "bigint":
        number = _number(v)
        return f"CASE WHEN regexp_matches({number}, '{_INT}') THEN TRY_CAST({number} AS BIGINT) END"
    if column_type == "double":
        number = _number(v)
        return (
            f"CASE WHEN regexp_matches({number}, '{_NUMBER}') THEN TRY_CAST({number} AS DOUBLE) END"
        )
    if column_type == "boolean":
        return f"CASE WHEN json_type({v}) = 'BOOLEAN' THEN {t} = 'true' END"
    if column_type == "timestamp":
        return _timestamp(v)
    digits = decimal_digits(column_type)
    assert digits is not None, column_type  # Column normalised its type
    precision, scale = digits
    number = _number(v)
    return (
        f"CASE WHEN regexp_matches({number}, '{_PLAIN_DECIMAL}') AND "
        f"length(rtrim(split_part({number}, '.', 2), '0')) <= {scale} "
        f"THEN TRY_CAST({number} AS DECIMAL({precision},{scale})) END"
    )


def _number(v: str) -> str:
    """A number's text, also when the JSON holds it as a string ("12.50")."""
    return f"CASE json_type({v}) WHEN 'VARCHAR' THEN {v}->>'$' ELSE {_text(v)} END"


def _timestamp(v: str) -> str:
    """An RFC 3339 / ISO 8601 string (with a zone: converted to UTC; without: taken as UTC), or
    integer Unix seconds; stored as a UTC timestamp without zone, as `_loaded_at`."""
    s = f"{v}->>'$'"
    return (
        f"CASE WHEN json_type({v}) = 'VARCHAR' THEN CASE WHEN regexp_matches({s}, '{_ZONE}') "
        f"THEN timezone('UTC', TRY_CAST({s} AS TIMESTAMPTZ)) ELSE TRY_CAST({s} AS TIMESTAMP) END "
        f"WHEN regexp_matches({_text(v)}, '{_INT}') "
        f"THEN timezone('UTC', to_timestamp(TRY_CAST({_text(v)} AS BIGINT))) END"
    )


def _bad(column: Column, v: str) -> str:
    """Why the value does not fit its column, or NULL."""
    shown = f"left({_text(v)}, 200)"
    reason = _literal(f"column {column.name!r}: not a {column.type}: ")
    cast = _cast(column.type, v)
    if column.type == "double":  # beyond a double's range: inf, or 0 for a non-zero number
        cast = (
            f"CASE WHEN isinf({cast}) OR ({cast} = 0 AND regexp_matches("
            f"split_part(lower({_number(v)}), 'e', 1), '[1-9]')) THEN NULL ELSE {cast} END"
        )
    return f"CASE WHEN {v} IS NOT NULL AND ({cast}) IS NULL THEN {reason} || {shown} END"

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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from .._columns import ROW_FIELDS, Column, decimal_digits, split_path
from .._errors import SinkError
from ..parse._rows import decode_exact, dumps

# A number DuckDB's JSON reader would change (not only re-spell): 16+ significant digits with a
# fraction or an exponent, or an exponent of 3+ digits (1e400, 1e-400). Integers, however long,
# it keeps as written. The exponent only where a number starts (the staged JSON is compact): a
# hex id's "e123" is no number, and would send most rows of an LLM's answers to Python.
INEXACT_NUMBER = "|".join(
    [
        "[0-9]{16,}[.eE]",
        *(f"[0-9]{{{k}}}\\.[0-9]{{{16 - k}}}" for k in range(1, 16)),
        "(^|[:\\[,])-?[0-9.]+[eE][+-]?[0-9]{3,}",
    ]
)
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


def ident(name: str) -> str:
    """A column's name quoted: a name may be a keyword (`at`, `order`)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path_value(path: str, found: Mapping[str, list[str]] | None = None) -> str:
    """The value at `path` as JSON. With `found` (each field's paths, extracted in one parse
    by `with_values`), an item of that list; else a json_extract of its own."""
    field, steps = split_path(path)
    if not steps:
        return f"to_json({field})" if field in ("id", "url") else f"nullif({field}, 'null')"
    where = json_path(steps)
    if "[*]" in steps:  # every item: a JSON array, NULL when there is none
        many = f"json_extract({field}, {_literal(where)})"
        return f"CASE WHEN len({many}) > 0 THEN to_json({many}) END"
    if found is not None:
        return f"nullif({_EXTRACTED}{field}[{found[field].index(where) + 1}], 'null')"
    return f"nullif(json_extract({field}, {_literal(where)}), 'null')"


_EXTRACTED = "_rl_paths_"  # the lists of values with_values extracts, a column per field


def _paths_by_field(columns: Sequence[Column]) -> dict[str, list[str]]:
    """Each JSON field's paths (without `[*]`), in order, once each: one json_extract a field
    reads them all in one parse. (A json_extract a path parses the field again each time: on a
    3 KB answer, nine columns cost ten times the load's own parse, and its buffers.)"""
    found: dict[str, list[str]] = {}
    for column in columns:
        for path in column.paths:
            field, steps = split_path(path)
            where = json_path(steps)
            if steps and "[*]" not in steps and where not in found.setdefault(field, []):
                found[field].append(where)
    return {field: paths for field, paths in found.items() if paths}


# A path's value as SQL read some other way (the line's own parse), or None: from the row
Reader = Callable[[str], str | None]


def value_sql(
    column: Column, found: Mapping[str, list[str]] | None = None, read: Reader | None = None
) -> str:
    """The column's value as JSON (NULL: missing or null), over the row's columns (and the
    extracted lists, with `found`; `read` first, where it knows the path). Later paths are
    read only where the first are NULL."""
    if column.sql is not None:
        return f"nullif(to_json({column.sql}), 'null')"
    values = [(read and read(path)) or _path_value(path, found) for path in column.paths]
    return values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"


def values_sql(
    columns: Sequence[Column],
    found: Mapping[str, list[str]] | None = None,
    read: Reader | None = None,
) -> str:
    """`value AS _v0, ...`, to select beside the row's columns."""
    return ", ".join(f"{value_sql(c, found, read)}::JSON AS _v{i}" for i, c in enumerate(columns))


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
        pattern += "|(^|[:\\[,])-?[0-9.]+[eE]"
    tests = [f"regexp_matches({f}::VARCHAR, {_literal(pattern)})" for f in fields]
    return " OR ".join(tests) or None


def fix_inexact(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[Column]) -> int:
    """Replace the values `values_sql` put in `table` (`_v0`, ...) by `exact_values` on the
    rows `suspect_sql` picks (few: long decimals are rare), in one UPDATE; how many rows.
    Rows staged with their values read from the line's own parse (`_exact`) are skipped
    without reading their text: such a line holds no number DuckDB would change, or SQL would
    have left it to Python."""
    suspect = suspect_sql(columns)
    if suspect is None:
        return 0
    rows = con.execute(
        f"SELECT seq, id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR FROM {table}"
        f" WHERE NOT {EXACT} AND ({suspect})"
    ).fetchall()
    if not rows:
        return 0
    exact = [
        exact_values(columns, dict(zip(ROW_FIELDS, fields, strict=True))) for _, *fields in rows
    ]
    paths = [i for i, c in enumerate(columns) if c.sql is None]  # sql columns: DuckDB's own
    fixes = pa.table(
        {"seq": [seq for seq, *_ in rows], **{f"_v{i}": [v[i] for v in exact] for i in paths}}
    )
    con.register("_rl_exact", fixes)
    try:
        sets = ", ".join(f"_v{i} = f._v{i}::JSON" for i in paths)
        con.execute(f"UPDATE {table} SET {sets} FROM _rl_exact f WHERE {table}.seq = f.seq")
    finally:
        con.unregister("_rl_exact")
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
        if column.type == "text" and isinstance(value, list):
            value = _joined(value)
        values.append(None if value is None else dumps(value, exact=True))
    return values


def _joined(items: list[Any]) -> str:
    """A text column's value of an array, as `_cast` joins it (strings as they are, any other
    item as its JSON text), here with each number as exact as the raw row stores it: DuckDB
    would read the items again as doubles."""
    return "".join(i if isinstance(i, str) else dumps(i, exact=True) for i in items)


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
    casts = [f"{_cast(c.type, f'_v{i}')} AS {ident(c.name)}" for i, c in enumerate(columns)]
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


# -- the stage: values staged with the rows, refused at commit, cast into the target -------------

_DUCKDB_TYPES = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "json": "JSON",
}


def duckdb_type(column_type: str) -> str:
    digits = decimal_digits(column_type)
    return f"DECIMAL({digits[0]},{digits[1]})" if digits else _DUCKDB_TYPES[column_type]


# The stage's flag of rows whose values were read from their line's own parse (mapped.py),
# exact as they are: the commit's check for numbers DuckDB would change skips them
EXACT = "_exact"


def staged_ddl(columns: Sequence[Column]) -> str:
    """The stage's value columns, after the row's: `, _v0 JSON, ..., _exact BOOLEAN`."""
    if not columns:
        return ""
    return "".join(f", _v{i} JSON" for i in range(len(columns))) + f", {EXACT} BOOLEAN"


def with_values(rows: str, columns: Sequence[Column]) -> str:
    """`rows` (a relation of seq, id, output, metadata, url, extra) with the columns' values
    after them, as the stage holds them: each JSON field parsed once for all its paths."""
    if not columns:
        return rows
    found = _paths_by_field(columns)
    if not found:
        return f"SELECT *, {values_sql(columns)}, false AS {EXACT} FROM ({rows})"
    lists = ", ".join(
        f"json_extract({field}, [{', '.join(map(_literal, paths))}]) AS {_EXTRACTED}{field}"
        for field, paths in found.items()
    )
    drop = ", ".join(f"{_EXTRACTED}{field}" for field in found)
    return (
        f"SELECT * EXCLUDE ({drop}), {values_sql(columns, found)}, false AS {EXACT} "
        f"FROM (SELECT *, {lists} FROM ({rows}))"
    )


def casts(columns: Sequence[Column], prefix: str = "") -> list[str]:
    """Each column's staged value cast to its type (`prefix`: the stage's alias, `s.`)."""
    return [_cast(c.type, f"{prefix}_v{i}") for i, c in enumerate(columns)]


def typed(columns: Sequence[Column], prefix: str = "") -> str:
    """`, cast AS name, ...`: the typed columns, to select after the row's."""
    pairs = zip(casts(columns, prefix), columns, strict=True)
    return "".join(f", {cast} AS {ident(c.name)}" for cast, c in pairs)


def check_columns(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[Column],
    where: str,
    schema: str | None = None,
) -> None:
    """Refuse, before anything is written, a column the table (in `schema`, or the current
    one) has with another type."""
    name = table.rpartition(".")[2]
    found = dict(
        con.execute(
            "SELECT lower(column_name), data_type FROM duckdb_columns() WHERE database_name ="
            " current_database() AND schema_name = coalesce(?, current_schema())"
            " AND lower(table_name) = lower(?)",
            [schema, name],
        ).fetchall()
    )
    for column in columns:
        had = found.get(column.name.lower())
        if had is not None and had != duckdb_type(column.type):
            raise SinkError(
                f"{where}: column {column.name!r} of table {table!r} is {had}, this load "
                f"declares it {duckdb_type(column.type)}: give the column another name "
                "(a column's type never changes under its rows)"
            )


def add_columns(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[Column]) -> None:
    """The declared columns the table lacks, added (NULL in the rows already there)."""
    for column in columns:
        con.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {ident(column.name)} "
            f"{duckdb_type(column.type)}"
        )


def refuse(
    con: duckdb.DuckDBPyConnection, stage: str, columns: Sequence[Column]
) -> list[tuple[int, str, str]]:
    """Make the staged values exact (`fix_inexact`), then the rows whose values do not fit
    their columns: (seq, reason, the value's text), in line order."""
    if not columns:
        return []
    fix_inexact(con, stage, columns)
    checks = [_bad(c, f"_v{i}") for i, c in enumerate(columns)]
    found = con.execute(
        f"SELECT * FROM (SELECT seq, {', '.join(checks)}, "
        f"{', '.join(f'_v{i}::VARCHAR' for i in range(len(columns)))} FROM {stage}) "
        f"WHERE coalesce({', '.join(f'#{i + 2}' for i in range(len(columns)))}) IS NOT NULL "
        "ORDER BY seq"
    ).fetchall()
    refused = []
    for seq, *cells in found:
        reasons, values = cells[: len(columns)], cells[len(columns) :]
        first = next(i for i, reason in enumerate(reasons) if reason is not None)
        refused.append((int(seq), str(reasons[first]), str(values[first])))
    return refused


def tally(
    con: duckdb.DuckDBPyConnection, rows: str, columns: Sequence[Column]
) -> tuple[dict[str, int] | None, int | None]:
    """The rows by their `status` column and the sum of `total_tokens`, where declared."""
    names = {c.name: i for i, c in enumerate(columns)}
    statuses: dict[str, int] | None = None
    tokens: int | None = None
    if "status" in names:
        cast = _cast(columns[names["status"]].type, f"_v{names['status']}")
        found = con.execute(f"SELECT {cast}, count(*) FROM {rows} GROUP BY 1").fetchall()
        statuses = {str(status): int(n) for status, n in found if status is not None}
    if "total_tokens" in names:
        cast = _cast(columns[names["total_tokens"]].type, f"_v{names['total_tokens']}")
        ((total,),) = con.execute(f"SELECT sum({cast}) FROM {rows}").fetchall()
        tokens = int(total) if total is not None else 0
    return statuses, tokens

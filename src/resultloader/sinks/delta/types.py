"""Typed columns in a Delta table: each column type as Delta stores it (string, long, double,
decimal(p,s), boolean, timestamp; json as its text in a string), a changed type refused, and
the table's columns as the DuckDB stage casts them."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from deltalake import DeltaTable

from ..._columns import Column, decimal_digits
from ..._errors import SinkError

_ARROW = {
    "text": pa.string(),
    "json": pa.string(),  # its exact text, as `output` is kept
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", "UTC"),  # Delta's timestamp: UTC, as `_loaded_at`
}


def arrow_type(column_type: str) -> pa.DataType:
    digits = decimal_digits(column_type)
    return pa.decimal128(*digits) if digits else _ARROW[column_type]


def delta_name(kind: pa.DataType) -> str:
    """How Delta names an Arrow type it stores: long, decimal(10,2)..."""
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    names = {"string": "string", "int64": "long", "double": "double", "bool": "boolean"}
    return "timestamp" if pa.types.is_timestamp(kind) else names.get(str(kind), str(kind))


def table_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def with_columns(schema: pa.Schema, columns: Sequence[Column]) -> pa.Schema:
    """`schema` and the declared columns it lacks, after its own."""
    for column in columns:
        if column.name not in schema.names:
            schema = schema.append(pa.field(column.name, arrow_type(column.type)))
    return schema


def check_types(table: DeltaTable, columns: Sequence[Column], where: str) -> None:
    """Refuse a declared column the table has with another type, before anything is written."""
    had = table_schema(table)
    for column in columns:
        if column.name not in had.names:
            continue
        found, wanted = had.field(column.name).type, arrow_type(column.type)
        if found != wanted:
            raise SinkError(
                f"{where}: column {column.name!r} of the Delta table is {delta_name(found)}, "
                f"this load declares it {delta_name(wanted)}: give the column another name "
                "(a column's type never changes under its rows)"
            )


def stored_types(schema: pa.Schema, row: pa.Schema) -> list[tuple[str, str]]:
    """The table's columns after the row's (`row`), each with the DuckDB type the stage casts
    its values to; a column of a type resultloader does not write is refused."""
    stored = []
    for field in schema:
        if field.name not in row.names:
            stored.append((field.name, _duckdb_type(field)))
    return stored


def _duckdb_type(field: pa.Field) -> str:
    kind = field.type
    if pa.types.is_decimal(kind):
        return f"DECIMAL({kind.precision},{kind.scale})"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    known = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN"}
    if str(kind) not in known:
        raise SinkError(
            f"the Delta table's column {field.name!r} is {kind}: resultloader writes string, "
            "long, double, decimal, boolean and timestamp columns only"
        )
    return known[str(kind)]

"""The Iceberg tables of a target: its rows, its ledger and its rejects, their schemas, and the
typed columns in Iceberg types.

Beside `NAMESPACE.TABLE` live `NAMESPACE._resultloader_loads` (the ledger of the namespace's
tables, as a DuckDB schema has one) and `NAMESPACE.TABLE_rejects`, both Iceberg tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from ..._columns import Column, decimal_digits
from ..._errors import SinkError
from .. import LEDGER_COLUMNS

ROW_COLUMNS = ("id", "output", "metadata", "url", "extra", "_source", "_loaded_at")
# a load's row in the ledger also says where it ran, so that a later load can tell a killed
# one's `running` row (as the Delta ledger does)
_LEDGER_EXTRA: tuple[tuple[str, IcebergType], ...] = (("host", StringType()), ("pid", LongType()))
_KINDS: dict[str, IcebergType] = {
    "text": StringType(),
    "integer": LongType(),
    "timestamp": TimestamptzType(),
}
_TYPES: dict[str, IcebergType] = {
    "text": StringType(),
    "bigint": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
    "timestamp": TimestampType(),  # UTC, without a zone, as in the other sinks
    "json": StringType(),  # the value's exact JSON text
}


# The Iceberg types the stage's DuckDB casts to, and writes into Parquet as Iceberg reads them
_DUCKDB: dict[IcebergType, str] = {
    StringType(): "VARCHAR",
    LongType(): "BIGINT",
    IntegerType(): "INTEGER",
    DoubleType(): "DOUBLE",
    FloatType(): "FLOAT",
    BooleanType(): "BOOLEAN",
    DateType(): "DATE",
    TimestampType(): "TIMESTAMP",
    TimestamptzType(): "TIMESTAMPTZ",
}


def _schema(columns: Sequence[tuple[str, IcebergType]], key: str | None = None) -> Schema:
    numbered = enumerate(columns, 1)
    fields = [NestedField(i, name, kind, required=name == key) for i, (name, kind) in numbered]
    return Schema(*fields, identifier_field_ids=[1] if key else [])


def rows_schema() -> Schema:
    """The target's own columns: `id` (its identifier field), the row's fields as JSON text,
    `_source`, `_loaded_at` (UTC)."""
    columns = [(name, StringType()) for name in ROW_COLUMNS[:-1]]
    return _schema([*columns, ("_loaded_at", TimestamptzType())], key="id")


def ledger_schema() -> Schema:
    columns = [(name, _KINDS[kind]) for name, kind in LEDGER_COLUMNS]
    return _schema([*columns, *_LEDGER_EXTRA])


def rejects_schema() -> Schema:
    longs = ("line", "byte_offset")
    columns = [
        (name, LongType() if name in longs else StringType())
        for name in ("_source", "line", "byte_offset", "reason", "raw")
    ]
    return _schema([*columns, ("_loaded_at", TimestamptzType()), ("load_id", StringType())])


def iceberg_type(column_type: str) -> IcebergType:
    """A typed column's type in Iceberg (decimal(p,s) as decimal(p,s), json as string)."""
    digits = decimal_digits(column_type)
    return DecimalType(*digits) if digits else _TYPES[column_type]


# The ledger and the rejects: rows of one load never conflict with another load's (snapshot
# isolation: a concurrent append does not fail an update of other rows), and their many small
# appends are merged into few manifests.
LOG_PROPERTIES = {
    "write.delete.isolation-level": "snapshot",
    "commit.manifest-merge.enabled": "true",
}


# The target's row groups of 64k rows (pyiceberg's default is 1M): a load reads its files a
# row group at a time, within its memory budget, and readers skip more by the ids' bounds.
TABLE_PROPERTIES = {"write.parquet.row-group-limit": "65536"}


def open_table(
    catalog: Catalog,
    name: tuple[str, ...],
    schema: Schema,
    properties: dict[str, str] | None = None,
) -> Table:
    """The table `name`, created with `schema` and `properties` (and its namespace) if absent."""
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        pass
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(name[:-1])
    return catalog.create_table_if_not_exists(name, schema, properties=properties or {})


def existing(catalog: Catalog, name: tuple[str, ...]) -> Table | None:
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return None


def add_columns(table: Table, columns: Sequence[Column], shown: str) -> Table:
    """The declared typed columns the table lacks, added (NULL in the rows already there); a
    column it has with another type is refused before anything is written."""
    have = {f.name.lower(): f for f in table.schema().fields}
    missing = []
    for column in columns:
        want = iceberg_type(column.type)
        found = have.get(column.name.lower())
        if found is None:
            missing.append((column.name, want))
        elif found.field_type != want:
            raise SinkError(
                f"{shown}: column {column.name!r} is {found.field_type}, this load declares it "
                f"{want}: give the column another name (a column's type never changes under "
                "its rows)"
            )
    if missing:
        with table.update_schema() as update:
            for name, kind in missing:
                update.add_column(name, kind)
    return table


def duckdb_type(kind: IcebergType) -> str | None:
    """The DuckDB type of an Iceberg column's values; None: a type resultloader does not
    write (nested, binary, uuid, time...: a table made by another tool may have one)."""
    if isinstance(kind, DecimalType):
        return f"DECIMAL({kind.precision},{kind.scale})"
    return _DUCKDB.get(kind)


def stored_columns(schema: Schema) -> list[tuple[str, str]]:
    """The table's columns after the row's own (its typed columns), each with the DuckDB type
    the stage casts its values to; those of a type it does not write are left out (NULL)."""
    found = [
        (f.name, duckdb_type(f.field_type)) for f in schema.fields if f.name not in ROW_COLUMNS
    ]
    return [(name, kind) for name, kind in found if kind is not None]


def arrow_schema(table: Table) -> pa.Schema:
    """The table's columns as Arrow, as its writer takes them (strings as large strings)."""
    return table.schema().as_arrow()


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `schema`'s columns in its order and types (a column it lacks: NULL)."""
    names = set(batch.schema.names)
    arrays = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)

"""A table's data file read batch by batch, in the table's columns.

pyiceberg's ArrowScan holds a whole file's batches in memory before it yields the first (a data
file is up to 512 MB of Parquet by default); a load reads each file twice (its keys, then the
rows it keeps), so it streams them with pyarrow instead, within the load's memory budget. Columns
are found by their Iceberg field id (pyiceberg, Spark and the others write it into the Parquet
schema), else by name (a file written without ids, added by `add_files`); a column the file
lacks (added to the table after it was written) is NULL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.table import FileScanTask, Table

from .tables import conform

_FIELD_ID = b"PARQUET:field_id"
_BATCH_ROWS = 65536


def file_batches(
    table: Table, task: FileScanTask, names: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The rows of `task`'s file, in the table's columns `names` (default: all), as Arrow
    batches of the table's types."""
    schema = table.schema().as_arrow()
    if names is not None:
        schema = pa.schema([schema.field(name) for name in names])
    with table.io.new_input(task.file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        columns = _columns(table, parquet.schema_arrow, schema.names)
        wanted = [c for c in columns.values() if c is not None]
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
            named = {name: batch.column(column) for name, column in columns.items() if column}
            yield conform(pa.RecordBatch.from_pydict(named), schema)


def _columns(table: Table, found: pa.Schema, names: Sequence[str]) -> dict[str, str | None]:
    """Each table column `names` -> the file's column holding it (None: the file lacks it)."""
    by_id = {}
    for field in found:
        raw = (field.metadata or {}).get(_FIELD_ID)
        if raw is not None:
            by_id[int(raw)] = field.name
    columns: dict[str, str | None] = {}
    for name in names:
        field_id = table.schema().find_field(name).field_id
        if by_id:
            columns[name] = by_id.get(field_id)
        else:
            columns[name] = name if name in found.names else None
    return columns

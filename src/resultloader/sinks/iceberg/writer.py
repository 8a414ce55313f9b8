"""A load's rows written as the table's Parquet data files by the stage's DuckDB, and their
manifest entries (DataFile) made by pyiceberg's own helpers from each file's footer.

pyiceberg's writer takes Arrow: the rows leave DuckDB as Arrow batches, are cast to the table's
schema, and pyarrow writes them with a file's statistics gathered in Python. DuckDB's COPY
writes the same rows from the stage into Parquet directly, in parallel and within its memory
limit, as the Delta sink's files are written. Each column carries its Iceberg field id; the
table's write properties apply (codec and level, rows a row group, target file size); each
file's counts and bounds are read from its footer by pyiceberg (the table's metrics modes
apply), bounds left out where a row group has none (DuckDB, like pyarrow, writes none for long
strings whose prefix it cannot bound).

DuckDB writes local files only (its S3 writer is an extension it would download): a table
whose data lives elsewhere (S3, an object-store layout) gets files written in a local scratch
directory, then copied to their place through the table's FileIO.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import duckdb
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.fileformat import DataFileStatistics
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table import TableProperties
from pyiceberg.table.locations import (
    LocationProvider,
    SimpleLocationProvider,
    load_location_provider,
)
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import Record
from pyiceberg.utils.properties import property_as_int

from ..._memory import MiB, parse_size
from ..columns import ident
from .tables import duckdb_type

# Iceberg's codec names (write.parquet.compression-codec), DuckDB's the same
_CODECS = ("zstd", "snappy", "gzip", "lz4", "brotli", "uncompressed")
# pyiceberg's default codec is zstd, at pyarrow's default level (1): what lands is the same as
# with pyiceberg's writer. (DuckDB's snappy COPY of 1M rows took 0.49 s of CPU against zstd's
# 0.62, a difference lost in a whole load's noise, for files nearly twice the size.)
_DEFAULT_ZSTD_LEVEL = 1
_UPLOAD_CHUNK = 8 * MiB
# DuckDB memory a thread of the COPY needs: its row group in the making, of at most
# ROW_GROUP_BYTES (the rows of a table's row-group-limit, pyiceberg's default 1M, may be far
# more: the benchmark's 1M rows at 16 threads failed in 352 MiB), and its encodings. Measured:
# 1M rows at 16 threads fail in 192 MiB without the cap of threads.
ROW_GROUP_BYTES = 16 * MiB
COPY_THREAD_MEMORY = 2 * ROW_GROUP_BYTES
_COPY = """COPY ({rows}) TO '{directory}' ({options}, FILENAME_PATTERN '{prefix}-{{uuid}}',
    APPEND, RETURN_STATS)"""


def copy_options(metadata: TableMetadata) -> str | None:
    """DuckDB's COPY options that write the table's data files as its properties ask; None
    where DuckDB cannot: a partitioned table, another file format, a column of a type it does
    not write, or a codec it lacks (then pyiceberg's own writer does)."""
    properties = metadata.properties
    codec = properties.get(TableProperties.PARQUET_COMPRESSION, "zstd").lower()
    file_format = properties.get(TableProperties.WRITE_FILE_FORMAT, "parquet").lower()
    if not metadata.spec().is_unpartitioned() or file_format != "parquet" or codec not in _CODECS:
        return None
    ids = []
    for field in metadata.schema().fields:
        if duckdb_type(field.field_type) is None:
            return None
        ids.append(f"{ident(field.name)}: {field.field_id}")
    options = ["FORMAT parquet", f"FIELD_IDS {{{', '.join(ids)}}}", f"COMPRESSION {codec}"]
    if codec == "zstd":  # the level applies to zstd only in DuckDB
        level = _int(properties, TableProperties.PARQUET_COMPRESSION_LEVEL, _DEFAULT_ZSTD_LEVEL)
        options.append(f"COMPRESSION_LEVEL {level}")
    rows = _int(
        properties,
        TableProperties.PARQUET_ROW_GROUP_LIMIT,
        TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT,
    )
    size = _int(
        properties,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
    )
    sizes = [f"ROW_GROUP_SIZE {rows}", f"ROW_GROUP_SIZE_BYTES {ROW_GROUP_BYTES}"]
    return ", ".join([*options, *sizes, f"FILE_SIZE_BYTES {size}"])


def _int(properties: dict[str, str], name: str, default: int | None) -> int | None:
    return property_as_int(properties, name, default)


def projection(schema: Schema, have: set[str], alias: str) -> str:
    """The table's columns from `alias`: each column of `have` cast to its type, any other
    NULL (a column the rows lack)."""
    columns = []
    for field in schema.fields:
        value = f"{alias}.{ident(field.name)}" if field.name in have else "NULL"
        columns.append(f"CAST({value} AS {duckdb_type(field.field_type)}) AS {ident(field.name)}")
    return ", ".join(columns)


def write_data_files(
    con: duckdb.DuckDBPyConnection,
    rows: tuple[str, dict[str, Any]],
    io: FileIO,
    metadata: TableMetadata,
    how: tuple[str, uuid.UUID],
) -> list[DataFile]:
    """Write the query `rows` (its SQL and parameters: the table's columns, in its order) as
    the table's data files; `how`: the COPY's options (copy_options) and the commit's uuid,
    which starts the files' names. Returns their DataFile entries; on failure the files
    written are removed (no snapshot names them)."""
    options, commit = how
    provider = load_location_provider(metadata.location, metadata.properties)
    prefix = str(commit)
    directory = _local_directory(provider)
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
        try:
            paths = _copy(con, rows, directory, prefix, options)
            locations = [provider.new_data_location(_name(path)) for path in paths]
            return [_data_file(metadata, p, at) for p, at in zip(paths, locations, strict=True)]
        except BaseException:
            for path in glob.glob(os.path.join(glob.escape(directory), f"{prefix}-*")):
                with contextlib.suppress(OSError):
                    os.remove(path)
            raise
    with tempfile.TemporaryDirectory(prefix="resultloader-iceberg-") as scratch:
        paths = _copy(con, rows, scratch, prefix, options)
        placed: list[DataFile] = []
        try:
            for path in paths:
                data_file = _data_file(metadata, path, provider.new_data_location(_name(path)))
                _upload(io, path, data_file.file_path)
                placed.append(data_file)
                os.remove(path)  # the scratch directory holds one file less
        except BaseException:
            remove_files(io, placed)
            raise
        return placed


def remove_files(io: FileIO, files: Sequence[DataFile]) -> None:
    """Remove files never committed (no reader sees them: a tidy-up only)."""
    for data_file in files:
        with contextlib.suppress(Exception):
            io.delete(data_file.file_path)


def _local_directory(provider: LocationProvider) -> str | None:
    """The local directory every new data file goes into, or None (files elsewhere, or a
    location per file: an object-store layout)."""
    if type(provider) is not SimpleLocationProvider:
        return None
    parsed = urlparse(provider.data_path)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return parsed.path
    return os.path.abspath(provider.data_path) if parsed.scheme == "" else None


def _copy(
    con: duckdb.DuckDBPyConnection,
    rows: tuple[str, dict[str, Any]],
    directory: str,
    prefix: str,
    options: str,
) -> list[str]:
    """COPY the rows into Parquet files in `directory`, named `prefix-<uuid>.parquet`; their
    paths (a file of no rows removed)."""
    sql, params = rows
    copy = _COPY.format(
        rows=sql, directory=directory.replace("'", "''"), options=options, prefix=prefix
    )
    with _threads_for_copy(con):
        result = con.execute(copy, params)
        names = [d[0] for d in result.description or ()]
        found_files = result.fetchall()
    paths = []
    for found in found_files:
        row = dict(zip(names, found, strict=True))
        if int(row["count"]):
            paths.append(str(row["filename"]))
        else:
            os.remove(str(row["filename"]))
    return paths


@contextlib.contextmanager
def _threads_for_copy(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The connection's threads, fewer for the COPY if its memory limit cannot hold a row
    group in the making for each (COPY_THREAD_MEMORY): 16 threads in the default budget's
    share failed with DuckDB's "Out of Memory"."""
    ((limit, threads),) = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads')"
    ).fetchall()
    fit = max(1, parse_size(str(limit).replace(" ", "")) // COPY_THREAD_MEMORY)
    if fit >= int(threads):
        yield
        return
    con.execute(f"SET threads = {fit}")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


def _name(path: str) -> str:
    return os.path.basename(path)


def _data_file(metadata: TableMetadata, path: str, location: str) -> DataFile:
    """The manifest entry of the local Parquet file `path`, to be found at `location`: its
    counts, sizes and bounds from its footer, as pyiceberg's own writer makes them."""
    footer = pq.read_metadata(path)
    schema = metadata.schema()
    ids = parquet_path_to_id_mapping(schema)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=footer,
        stats_columns=compute_statistics_plan(schema, metadata.properties),
        parquet_column_mapping=ids,
    )
    _drop_partial_bounds(statistics, footer, ids)
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        file_size_in_bytes=os.path.getsize(path),
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )


def _drop_partial_bounds(
    statistics: DataFileStatistics, footer: pq.FileMetaData, ids: dict[str, int]
) -> None:
    """Leave out the bounds of a column that some row group holding values has none for:
    pyiceberg takes the bounds of the row groups that have them, which would then not bound
    the file's values, and a reader would skip the file for a value it holds."""
    for group in range(footer.num_row_groups):
        row_group = footer.row_group(group)
        for position in range(footer.num_columns):
            column = row_group.column(position)
            stats = column.statistics if column.is_stats_set else None
            has_values = (
                stats is None or not stats.has_null_count or (column.num_values > stats.null_count)
            )
            if has_values and (stats is None or not stats.has_min_max):
                statistics.column_aggregates.pop(ids[column.path_in_schema], None)


def _upload(io: FileIO, path: str, location: str) -> None:
    with open(path, "rb") as source, io.new_output(location).create(overwrite=True) as target:
        shutil.copyfileobj(source, target, _UPLOAD_CHUNK)

"""A load's rows written into a local Delta table as Parquet files by DuckDB, committed with
deltalake's transaction API.

deltalake's own writer and merge hold the whole write in memory (delta-rs issue #2968: ~300 MB
for 1M rows, 5 GB for the merge of a tenth of them). DuckDB's COPY streams the same rows into
Parquet files within its memory limit; one commit then adds them and, for a load that replaces
rows, removes the files that held their old versions (their other rows are copied into the new
files: copy-on-write, as Delta's MERGE does). The commit is not retried: if another writer
committed since the table was read, it fails and the load commits nothing, rather than adding a
second row for an id.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction, RemoveAction

from .types import table_schema

# writer features that a commit of plain Parquet files keeps (appendOnly: checked below)
_PLAIN_WRITER = {"appendOnly", "invariants"}


def writes_files(table: DeltaTable, path: str, schema: pa.Schema, row: pa.Schema) -> bool:
    """Whether DuckDB may write the table's files: a local, unpartitioned table whose columns
    (`schema`) are the row's (`row`) then typed columns, with no feature that asks more of a
    writer than Parquet files (deletion vectors, column mapping, change data feed, constraints,
    generated or identity columns)."""
    if "://" in path:
        return False  # DuckDB's S3 writer (httpfs) is an extension it would download
    protocol = table.protocol()
    if protocol.reader_features or protocol.min_reader_version > 1:
        return False
    if protocol.writer_features is None:
        plain = protocol.min_writer_version <= 2
    else:
        plain = set(protocol.writer_features) <= _PLAIN_WRITER
    metadata = table.metadata()
    config = {k.lower(): str(v).lower() for k, v in metadata.configuration.items()}
    return (
        plain
        and not metadata.partition_columns
        and config.get("delta.appendonly") != "true"
        and config.get("delta.enablechangedatafeed") != "true"
        and not any(k.startswith("delta.constraints.") for k in config)
        and schema.names[: len(row)] == row.names
    )


def local_files(table: DeltaTable, path: str) -> dict[str, str]:
    """The table's data files: their local path -> their path in the log."""
    actions = pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()
    return {os.path.join(path, rel): rel for rel in actions}


def commit(
    table: DeltaTable,
    written: Sequence[dict[str, Any]],
    removed: Sequence[str],
    metadata: dict[str, str],
    schema: pa.Schema,
) -> None:
    """One commit adding the `written` files (DuckDB's COPY ... RETURN_STATS rows) and removing
    the `removed` ones (paths as in the log). Fails if the table moved on since it was read.
    A `schema` wider than the table's (new typed columns) is only for a table with no files:
    its commit is then an overwrite (of nothing), which writes the new schema with the files."""
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        AddAction(
            os.path.basename(f["filename"]),
            int(f["file_size_bytes"]),
            {},
            now,
            True,
            json.dumps(_stats(f)),
        )
        for f in written
    ]
    actions += [RemoveAction(rel, True, now) for rel in removed]
    properties = CommitProperties(custom_metadata=metadata, max_commit_retries=0)
    mode = "append" if schema.names == table_schema(table).names else "overwrite"
    table.create_write_transaction(actions, mode, schema, commit_properties=properties)


def discard(written: Sequence[dict[str, Any]]) -> None:
    """Remove files written for a commit that failed (readers ignore them anyway)."""
    for f in written:
        with contextlib.suppress(OSError):
            os.remove(f["filename"])


def _stats(file: dict[str, Any]) -> dict[str, Any]:
    """Delta's file statistics from DuckDB's: rows, nulls a column, and the ids' range (which
    lets readers skip the file for an id outside it) where DuckDB kept it exact."""
    columns = {name.strip('"'): s for name, s in (file["column_statistics"] or {}).items()}
    stats: dict[str, Any] = {
        "numRecords": int(file["count"]),
        "nullCount": {name: int(s["null_count"]) for name, s in columns.items()},
    }
    ids = columns.get("id", {})
    if ids.get("min_is_exact") == "true" and ids.get("max_is_exact") == "true":
        stats["minValues"], stats["maxValues"] = {"id": ids["min"]}, {"id": ids["max"]}
    return stats

"""A load's rows committed into an Iceberg table: the winners that are new or changed, and the
files holding changed rows' old versions rewritten without them, in ONE snapshot.

The key matching runs in the stage's DuckDB, not row by row: the table's files are read for
their ids and a hash of each row's fields (only those columns, file by file, streamed), the
winners equal to the stored rows are dropped (DuckDBStage.keep_changed_keys), and the files that
hold a changed id are the ones to replace. One overwrite snapshot then removes those files and
adds new ones: the changed rows, and the replaced files' other rows (copy-on-write, as Iceberg's
own MERGE does). Nothing changed: no snapshot. The stage's DuckDB writes the new files
(writer.py) where it can; otherwise pyiceberg's writer does, from the rows as Arrow.

The snapshot is made on the table as read at commit. If another writer committed since, the
commit fails (pyiceberg retries only where its serializable validation finds no conflicting
files: a concurrent write of rows always conflicts) and the load commits nothing; the files it
wrote are removed.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.metadata import TableMetadata

from ..._errors import SinkError
from .._stage import DuckDBStage
from .files import file_batches
from .tables import ROW_COLUMNS, arrow_schema, conform, stored_columns
from .writer import copy_options, projection, remove_files, write_data_files

# pyiceberg's writer: rows written a data file at a time (in Arrow's memory; Parquet writes a
# few times less)
CHUNK_BYTES = 64 * 1024 * 1024
# What the writer holds beside DuckDB's stage at commit when it reads the table's files as
# Arrow (a load into a table with rows): a replaced file's row group, and for pyiceberg's writer
# a chunk and its Parquet. The stage's DuckDB gives it up then (DuckDBStage.reserve); before,
# and in a load into an empty table, DuckDB has the budget a Delta load's has.
WRITER_MEMORY = 3 * CHUNK_BYTES
_KEYS = """INSERT INTO _rl_current_keys SELECT hash(id), {digest}, $file FROM _rl_file"""
_NEW_IDS = """SELECT count(*) FROM _rl_changed c
ANTI JOIN _rl_current_keys k ON k.key = hash(c.id)"""
_REPLACED = """SELECT DISTINCT file FROM _rl_current_keys
SEMI JOIN (SELECT hash(id) AS key FROM _rl_changed) USING (key) ORDER BY file"""

# writes the rows of a commit (the table's metadata, the commit's uuid): the files it wrote
Write = Callable[[TableMetadata, uuid.UUID], Iterator[DataFile]]


def upsert(
    table: Table,
    stage: DuckDBStage,
    source: str,
    now: datetime,
    properties: dict[str, str],
    winners: int,
) -> int:
    """Commit the load's `winners` (after stage.counts) into `table`, one snapshot with
    `properties`; returns how many rows were inserted or updated (none: no snapshot)."""
    tasks = list(table.scan().plan_files())
    if any(task.delete_files for task in tasks):
        raise SinkError(
            "the table has delete files (merge-on-read deletes of another engine): compact it "
            "(rewrite its data files) before loading into it"
        )
    stage.store_as(stored_columns(table.schema()))  # the winners carry the table's columns
    replaced: list[FileScanTask] = []
    growth = winners  # rows the table gains: the ids it does not hold yet
    writes_files = copy_options(table.metadata) is not None
    if tasks or not writes_files:
        stage.reserve(WRITER_MEMORY)
    if tasks:
        con = stage.connection
        _current_keys(con, table, tasks, stage)
        winners = stage.keep_changed_keys(source, now)
        if not winners:
            return 0
        ((growth,),) = con.sql(_NEW_IDS).fetchall()
        replaced = [tasks[i] for (i,) in con.sql(_REPLACED).fetchall()]
    writer = _duckdb_writer if writes_files else _arrow_writer
    write = writer(table, stage, source, now, replaced)
    return _commit(table, write, [t.file for t in replaced], properties, (winners, int(growth)))


def _commit(
    table: Table,
    write: Write,
    removed: Sequence[DataFile],
    properties: dict[str, str],
    counts: tuple[int, int],
) -> int:
    """Write the rows (`write`: their data files) and commit them, replacing the `removed`
    files, in one snapshot. `counts`: the rows upserted, and how many rows the table gains
    (its new ids): checked against the rows written and removed before the commit, so that no
    id is ever stored twice."""
    winners, growth = counts
    written: list[DataFile] = []
    transaction = table.transaction()
    try:
        update = transaction.update_snapshot(snapshot_properties=properties)
        with update.overwrite() as snapshot:
            for old in removed:
                snapshot.delete_data_file(old)
            for data_file in write(transaction.table_metadata, snapshot.commit_uuid):
                written.append(data_file)
                snapshot.append_data_file(data_file)
            _check_growth(written, removed, growth)
        transaction.commit_transaction()
    except BaseException:
        remove_files(table.io, written)  # never committed: no reader sees them; tidy only
        raise
    return winners


def _duckdb_writer(
    table: Table,
    stage: DuckDBStage,
    source: str,
    now: datetime,
    replaced: Sequence[FileScanTask],
) -> Write:
    """The rows to write as one query of the stage's DuckDB, whose COPY writes the files: the
    winners kept, then the rows of the `replaced` files (read as Arrow) whose id is not among
    them."""
    con = stage.connection
    schema = table.schema()
    winners, params = stage.winners_query(source, now)
    have = {*ROW_COLUMNS, *(name for name, _ in stored_columns(schema))}
    rows = f"SELECT {projection(schema, have, 'w')} FROM ({winners}) w"
    if replaced:
        names = {field.name for field in schema.fields}
        rows += f""" UNION ALL SELECT {projection(schema, names, "o")} FROM _rl_old o
            ANTI JOIN _rl_changed c ON o.id = c.id"""

    def write(metadata: TableMetadata, commit: uuid.UUID) -> Iterator[DataFile]:
        options = copy_options(metadata)
        assert options is not None  # the metadata the writer was chosen by
        if replaced:
            batches = (b for task in replaced for b in file_batches(table, task))
            con.register("_rl_old", pa.RecordBatchReader.from_batches(arrow_schema(table), batches))
        try:
            yield from write_data_files(con, (rows, params), table.io, metadata, (options, commit))
        finally:
            if replaced:
                con.unregister("_rl_old")

    return write


def _arrow_writer(
    table: Table,
    stage: DuckDBStage,
    source: str,
    now: datetime,
    replaced: Sequence[FileScanTask],
) -> Write:
    """The rows as Arrow batches in the table's schema, written by pyiceberg's own writer:
    for a table whose files DuckDB does not write (writer.copy_options)."""
    changed_ids = pa.array([], pa.large_string())
    if replaced:
        ids = stage.connection.sql("SELECT id FROM _rl_changed").to_arrow_table()
        changed_ids = ids.column("id").combine_chunks().cast(pa.large_string())
    rows = pa.RecordBatchReader.from_batches(
        arrow_schema(table), _rows(table, stage, source, now, replaced, changed_ids)
    )

    def write(metadata: TableMetadata, commit: uuid.UUID) -> Iterator[DataFile]:
        return _write(metadata, table, rows, commit)

    return write


def _write(
    metadata: TableMetadata, table: Table, rows: pa.RecordBatchReader, commit: uuid.UUID
) -> Iterator[DataFile]:
    """Write `rows` as data files, a chunk of CHUNK_BYTES at a time: pyiceberg's writer takes
    in all the files of what it is given before it writes one (its thread pool's map)."""
    counter = itertools.count()  # file names: the commit's uuid and this number
    chunk: list[pa.RecordBatch] = []
    size = 0
    for batch in itertools.chain(rows, [None]):
        if batch is not None:
            chunk.append(batch)
            size += batch.nbytes
        if chunk and (batch is None or size >= CHUNK_BYTES):
            data = pa.Table.from_batches(chunk, rows.schema)
            chunk, size = [], 0
            yield from _dataframe_to_data_files(metadata, data, table.io, commit, counter)


def _check_growth(written: Sequence[DataFile], removed: Sequence[DataFile], growth: int) -> None:
    gained = sum(f.record_count for f in written) - sum(f.record_count for f in removed)
    if gained != growth:  # a file read short, or a replaced row copied: never commit that
        raise SinkError(
            f"the rows written would change the table by {gained} rows where the load adds "
            f"{growth} ids; nothing was committed (please report this)"
        )


def _current_keys(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    tasks: Sequence[FileScanTask],
    stage: DuckDBStage,
) -> None:
    """`_rl_current_keys`: each stored row's hash(id), the digest of its fields and of the
    typed columns the load declares (stage.current_digest), and its file (an index into
    `tasks`), read file by file: only those columns, streamed."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rl_current_keys (key UBIGINT, digest UBIGINT, file INTEGER)"
    )
    names = ("id", "output", "metadata", "url", "extra", *stage.compared_columns())
    schema = pa.schema([arrow_schema(table).field(name) for name in names])
    keys = _KEYS.format(digest=stage.current_digest(set(names)))
    for i, task in enumerate(tasks):
        reader = pa.RecordBatchReader.from_batches(schema, file_batches(table, task, names))
        con.register("_rl_file", reader)
        try:
            con.execute(keys, {"file": i})
        finally:
            con.unregister("_rl_file")
    ((read,),) = con.sql("SELECT count(*) FROM _rl_current_keys").fetchall()
    stored = sum(task.file.record_count for task in tasks)
    if read != stored:
        raise SinkError(f"read {read} rows of the table's files where its manifests count {stored}")


def _rows(
    table: Table,
    stage: DuckDBStage,
    source: str,
    now: datetime,
    replaced: Sequence[FileScanTask],
    changed_ids: pa.Array,
) -> Iterator[pa.RecordBatch]:
    """The rows to write, in the table's columns: the winners kept, then the rows of the
    `replaced` files whose id is not among them."""
    schema = arrow_schema(table)
    for batch in stage.winners(source, now):
        yield conform(batch, schema)
    for task in replaced:
        for batch in file_batches(table, task):
            kept = batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=changed_ids)))
            if kept.num_rows:
                yield kept

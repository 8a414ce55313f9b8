"""The Iceberg sink's data files: written by DuckDB with the table's field ids, codec and row
groups, their manifest entries' bounds right for pruning (none where a row group has none),
pyiceberg's writer for a partitioned table, and a load at 16 threads within the default
budget. A SQL catalog on SQLite in a temp dir, its warehouse beside it."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import NestedField, StringType

import resultloader
from resultloader import LoadOptions
from resultloader._columns import parse_column
from resultloader.sinks.iceberg.tables import rows_schema
from resultloader.sinks.iceberg.writer import copy_options, write_data_files
from tests.support.sink_targets import IcebergTarget, iceberg_env

INTO = "iceberg:lake/ns.results"


@pytest.fixture
def target(tmp_path, monkeypatch) -> IcebergTarget:
    env = iceberg_env("lake", str(tmp_path), str(tmp_path / "warehouse"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return IcebergTarget(INTO, env=env)


@pytest.fixture
def catalog(tmp_path, target) -> SqlCatalog:
    """The catalog the target's variables configure, to make a table before a load."""
    catalog = SqlCatalog(
        "lake", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("ns")
    return catalog


def lines(count: int, changed: int = 0) -> str:
    """`count` rows k0000...; the first `changed` with another output."""
    return "".join(
        f'{{"id":"k{i:04d}","output":{{"n":{i},"v":{int(i < changed)}}}}}\n' for i in range(count)
    )


def local_files(target: IcebergTarget) -> list[str]:
    table = target._table(target.name)
    return [t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()]


def test_files_carry_the_tables_field_ids_and_zstd_and_bounds_that_prune(target, write):
    total = parse_column("n=output.n::bigint")
    path = write("a.jsonl", lines(100))
    resultloader.load(path, INTO, LoadOptions(columns=(total,)))
    table = target._table(target.name)
    ids = {f.name: f.field_id for f in table.schema().fields}
    (task,) = table.scan().plan_files()
    (file,) = local_files(target)
    footer = pq.read_metadata(file)
    found = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in footer.schema.to_arrow_schema()}
    assert found == ids and "n" in ids  # the typed column too
    codecs = {footer.row_group(0).column(i).compression for i in range(footer.num_columns)}
    assert codecs == {"ZSTD"}  # Iceberg's default codec, as pyiceberg writes
    lower, upper = task.file.lower_bounds, task.file.upper_bounds
    assert from_bytes(StringType(), lower[ids["id"]]) == "k0000"
    assert from_bytes(StringType(), upper[ids["id"]]) == "k0099"
    assert (task.file.record_count, task.file.null_value_counts[ids["extra"]]) == (100, 100)
    assert not list(table.scan(row_filter=EqualTo("id", "k0100")).plan_files())  # pruned
    (row,) = table.scan(row_filter=EqualTo("id", "k0042")).to_arrow().to_pylist()
    assert row["n"] == 42


def test_the_tables_codec_and_row_group_size_are_kept(target, catalog, write):
    properties = {
        "write.parquet.compression-codec": "snappy",
        "write.parquet.row-group-limit": "2048",
    }
    catalog.create_table(("ns", "results"), rows_schema(), properties=properties)
    resultloader.load(write("a.jsonl", lines(5000)), INTO, LoadOptions(threads=1))
    footer = pq.read_metadata(local_files(target)[0])
    assert {footer.row_group(0).column(i).compression for i in range(7)} == {"SNAPPY"}
    assert footer.num_row_groups == 3  # 5000 rows, 2048 a row group
    assert len(target.rows()) == 5000


def test_a_column_one_row_group_has_no_bounds_for_has_none_in_the_manifest(catalog, tmp_path):
    """DuckDB (as pyarrow) writes no bounds for a long string it cannot bound by a prefix:
    the file's bounds must not be those of its other row groups, or a reader skips the file
    for a value it holds."""
    schema = Schema(NestedField(1, "id", StringType()), NestedField(2, "text", StringType()))
    table = catalog.create_table(
        ("ns", "t"), schema, properties={"write.parquet.row-group-limit": "2048"}
    )
    long = "é" * 300  # no prefix of it bounds it from above
    rows = """SELECT 'k' || i AS id, CASE WHEN i < 2048 THEN 'short' ELSE $long || i END AS text
        FROM range(4096) t(i) ORDER BY i"""
    con = duckdb.connect()
    con.execute("SET threads = 1")  # the rows in order: the first row group all 'short'
    options = copy_options(table.metadata)
    assert options is not None
    how = (options, uuid.uuid4())
    files = write_data_files(con, (rows, {"long": long}), table.io, table.metadata, how)
    assert pq.read_metadata(files[0].file_path.removeprefix("file://")).num_row_groups == 2
    with (
        table.transaction() as transaction,
        transaction.update_snapshot().fast_append() as snapshot,
    ):
        for data_file in files:
            snapshot.append_data_file(data_file)
    assert 2 not in files[0].upper_bounds and 2 not in files[0].lower_bounds
    assert from_bytes(StringType(), files[0].upper_bounds[1]) == "k999"  # the ids have theirs
    (row,) = table.scan(row_filter=EqualTo("text", long + "3000")).to_arrow().to_pylist()
    assert row["id"] == "k3000"


def test_a_partitioned_table_is_written_by_pyicebergs_writer(target, catalog, write):
    spec = PartitionSpec(PartitionField(6, 1000, IdentityTransform(), "_source"))
    table = catalog.create_table(("ns", "results"), rows_schema(), partition_spec=spec)
    assert copy_options(table.metadata) is None
    first, second = write("a.jsonl", lines(50)), write("b.jsonl", lines(10, changed=3))
    resultloader.load(first, INTO)
    report = resultloader.load(second, INTO)
    assert (report.rows_upserted, report.rows_unchanged) == (3, 7)
    rows = target.rows()
    assert len(rows) == 50
    assert {k: r["output"]["v"] for k, r in rows.items() if r["output"]["v"]} == {
        "k0000": 1,
        "k0001": 1,
        "k0002": 1,
    }
    partitions = {t.file.partition[0] for t in target._table(target.name).scan().plan_files()}
    assert partitions == {str(first), str(second)}  # kept rows stay their source's


def wide_rows(path: Path, count: int = 1_000_000) -> None:
    """`count` rows of ~330 bytes, each id once: a million of them make row groups of 300 MB
    in a table with pyiceberg's default row-group limit (1M rows)."""
    text = "lorem ipsum " * 20
    with path.open("w") as out:
        for i in range(count):
            out.write(
                f'{{"id":"product_{i:08d}","output":{{"score":{i},"text":"{text}{i}"}},'
                f'"url":"https://app.example.com/review/{i}"}}\n'
            )


def test_a_load_and_a_reload_at_16_threads_fit_the_default_budget(target, catalog, tmp_path):
    """DuckDB's COPY writes at the stage's threads, within its memory limit: 16 threads on a
    million rows, fresh and with a tenth changed (every file rewritten), into a table made
    with pyiceberg's defaults (row groups of up to 1M rows: DuckDB's are bounded in bytes)."""
    catalog.create_table(("ns", "results"), rows_schema())
    source = tmp_path / "wide.jsonl"
    wide_rows(source)
    options = LoadOptions(threads=16)
    report = resultloader.load(source, INTO, options)
    assert (report.rows_read, report.rows_upserted) == (1_000_000, 1_000_000)
    changed = tmp_path / "changed.jsonl"
    with source.open() as old, changed.open("w") as new:
        for n, line in enumerate(old):
            new.write(line.replace("https://", "http://") if n % 10 == 0 else line)
    again = resultloader.load(changed, INTO, options)
    assert again.rows_upserted == 100_000
    ids = target._table(target.name).scan(selected_fields=("id", "url")).to_arrow()
    assert len(ids) == len(set(ids.column("id").to_pylist())) == 1_000_000
    plain = sum(1 for url in ids.column("url").to_pylist() if url.startswith("http://"))
    assert plain == 100_000

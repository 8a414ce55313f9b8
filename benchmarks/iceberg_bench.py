"""The Iceberg part of benchmarks/sinks.py: the sink against pyiceberg's own `Table.upsert` and
against the Delta sink, on the same files, in the same run.

The reference builds the same rows as the Delta reference (DuckDB's JSON functions, every field
as exact text, the last row of an id winning) and upserts them with `Table.upsert(rows,
join_cols=["id"])` into a table of `id` and the four fields (without `_source` and `_loaded_at`,
which differ from one load to the next and would make every row an update). Table.upsert of 1M
rows takes minutes, so it may run on fewer rows (`--upsert-rows`): its time is then scaled per
row to the sink's row count, which flatters it (its cost grows faster than its rows), and the
output says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
CATALOG = "bench"

# the rows of a file as the sinks store them (the Delta reference's query, without _source and
# _loaded_at), then Table.upsert into `b.ref` of the SQL catalog in `directory`
REFERENCE = """
import sys, duckdb, pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
path, directory, mode = sys.argv[1:4]
catalog = SqlCatalog("bench", uri=f"sqlite:///{directory}/catalog.db",
                     warehouse=f"file://{directory}/warehouse")
con = duckdb.connect()
rows = con.sql('''SELECT v[1]->>'$' AS id, CASE WHEN v[2] <> 'null' THEN v[2] END AS output,
        coalesce(CASE WHEN v[3] <> 'null' THEN v[3] END, '{}') AS metadata, v[4]->>'$' AS url,
        CASE WHEN len(k) > (v[1] IS NOT NULL)::INT + (v[2] IS NOT NULL)::INT
                + (v[3] IS NOT NULL)::INT + (v[4] IS NOT NULL)::INT
            THEN json_merge_patch(raw, '{"id":null,"output":null,"metadata":null,"url":null}')
            END::VARCHAR AS extra
    FROM (SELECT json AS raw, json_keys(json) AS k,
            json_extract(json, ['$.id', '$.output', '$.metadata', '$.url']) AS v,
            row_number() OVER () AS line
        FROM read_json_objects($path, format = 'newline_delimited'))
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY line DESC) = 1''',
    params={"path": path}).to_arrow_table()
schema = pa.schema([pa.field("id", pa.string(), nullable=False)]
                   + [pa.field(c, pa.string()) for c in ("output", "metadata", "url", "extra")])
if mode == "fresh":
    catalog.create_namespace("b")
    table = catalog.create_table("b.ref", schema)
else:
    table = catalog.load_table("b.ref")
table.upsert(rows.cast(schema), join_cols=["id"])
"""

# (rows, an order-free digest of every row's fields) of an Iceberg table, in a child process
CONTENT = """
import sys, duckdb
from pyiceberg.catalog import load_catalog
from pyiceberg.utils.config import Config
files = [t.file.file_path.removeprefix("file://")
         for t in load_catalog(sys.argv[1], **Config().get_catalog_config(sys.argv[1]))
         .load_table(sys.argv[2]).scan().plan_files()]
print(*duckdb.sql("SELECT count(*), bit_xor(hash(id, output, metadata, url, extra))"
                  f" FROM read_parquet({files!r})").fetchall()[0])
"""

Measure = Callable[[list[str], dict[str, str]], tuple[float, float]]


def catalog_env(directory: Path) -> dict[str, str]:
    prefix = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
    return {
        prefix + "TYPE": "sql",
        prefix + "URI": f"sqlite:///{directory}/catalog.db",
        prefix + "WAREHOUSE": f"file://{directory}/warehouse",
    }


def content(table: str, env: dict[str, str]) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", CONTENT, CATALOG, table],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows, digest = done.stdout.split()
    return int(rows), int(digest)


def iceberg_round(
    work: Path,
    files: tuple[Path, Path],
    reference_files: tuple[Path, Path],
    env: dict[str, str],
    measure: Measure,
) -> dict[str, tuple[float, float]]:
    """The sink's fresh load and 10%-changed re-load of `files`, and Table.upsert's of
    `reference_files` (the same rows, or their first N)."""
    ours, ref = work / "iceberg-ours", work / "iceberg-ref"
    for p in (ours, ref):
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
    env = {**env, **catalog_env(ours)}
    into = ["--into", f"iceberg:{CATALOG}/b.ours", "-q"]
    reference = [sys.executable, "-c", REFERENCE]
    found = {
        "iceberg fresh": measure([*CLI, "load", str(files[0]), *into], env),
        "iceberg re-load": measure([*CLI, "load", str(files[0]), *into], env),
        "iceberg re-load 10% changed": measure([*CLI, "load", str(files[1]), *into], env),
        "iceberg upsert fresh": measure(
            [*reference, str(reference_files[0]), str(ref), "fresh"], env
        ),
        "iceberg upsert 10% changed": measure(
            [*reference, str(reference_files[1]), str(ref), "merge"], env
        ),
    }
    if files == reference_files:  # the same rows: the same table
        theirs = {**env, **catalog_env(ref)}
        if content("b.ours", env) != content("b.ref", theirs):
            raise SystemExit("the Iceberg reference's table differs from the sink's")
    return found


def versions() -> str:
    from importlib.metadata import version

    names = ("pyiceberg", "pyarrow", "deltalake", "duckdb")
    return ", ".join(f"{name} {version(name)}" for name in names)


def report(wall: dict[str, float], rows: int, upsert_rows: int) -> None:
    """The Iceberg targets: 10x Table.upsert (per row), at most 1.3x the Delta sink."""
    scale = rows / upsert_rows
    note = "" if scale == 1 else f" (Table.upsert ran {upsert_rows:,} rows: scaled x{scale:g})"
    for ours, theirs, delta in (
        ("iceberg fresh", "iceberg upsert fresh", "delta fresh"),
        ("iceberg re-load 10% changed", "iceberg upsert 10% changed", "delta re-load 10% changed"),
    ):
        faster = wall[theirs] * scale / wall[ours]
        than_delta = wall[ours] / wall[delta]
        print(
            f"  {ours}: {faster:.1f}x faster than Table.upsert{note} (target 10x) "
            f"{'ok' if faster >= 10 else 'MISSED'}; {than_delta:.2f}x the Delta sink "
            f"(target 1.3x) {'ok' if than_delta <= 1.3 else 'MISSED'}"
        )
    print(f"  versions: {versions()}")

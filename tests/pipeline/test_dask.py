"""load_many on a real local Dask cluster: a scheduler and two worker processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import resultloader
from resultloader import LoadOptions, load_many
from tests.support.duckdb_files import query
from tests.support.row_files import bad_rows_files, jsonl

distributed = pytest.importorskip("distributed")

ROWS = "SELECT id, output::VARCHAR, metadata::VARCHAR, url, extra::VARCHAR FROM results ORDER BY id"
REJECTS = (
    "SELECT _source, line, byte_offset, reason, raw FROM results_rejects ORDER BY _source, line"
)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """`dask://HOST:PORT` of a local cluster of two single-threaded worker processes."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    try:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        cluster.close()


def test_the_table_and_rejects_equal_the_single_process_ones(scheduler, tmp_path):
    sources = bad_rows_files(tmp_path, 6)
    options = LoadOptions(on_error="quarantine")
    one, on_dask = tmp_path / "one.duckdb", tmp_path / "dask.duckdb"
    load_many(sources, one, options)
    stage = tmp_path / "stage"
    stage.mkdir()
    results = load_many(sources, on_dask, options, engine=scheduler, parts_dir=str(stage))
    assert [r.outcome for r in results] == ["loaded"] * 6
    assert query(on_dask, ROWS) == query(one, ROWS)
    assert query(on_dask, REJECTS) == query(one, REJECTS)
    ledger = "SELECT source, status, rows_read, bad_rows FROM _resultloader_loads ORDER BY source"
    assert query(on_dask, ledger) == query(one, ledger)
    assert list(stage.iterdir()) == []  # the parts are removed
    again = load_many(sources, on_dask, options, engine=scheduler)
    assert [r.outcome for r in again] == ["skipped"] * 6


def test_atomic_on_dask_equals_one_process(scheduler, tmp_path):
    sources = bad_rows_files(tmp_path, 4)
    one, on_dask = tmp_path / "one.duckdb", tmp_path / "dask.duckdb"
    load_many(sources, one, LoadOptions(on_error="skip"))
    load_many(sources, on_dask, LoadOptions(on_error="skip"), engine=scheduler, atomic=True)
    assert query(on_dask, ROWS) == query(one, ROWS)


def test_a_failing_source_on_a_worker_is_named_in_one_line(scheduler, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl(("x", 1)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id":"b1"}\n{"id":"b2", oops}\n')
    db = tmp_path / "r.duckdb"
    with pytest.raises(resultloader.ResultLoaderError) as caught:
        load_many([str(good), str(bad)], db, engine=scheduler)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{bad}: line 2")
    assert query(db, "SELECT id FROM results") == [("x",)]  # the one before it stays
    # the failure is in the ledger as when it happens in this process
    ledger = "SELECT source, status, error FROM _resultloader_loads ORDER BY started_at"
    one = tmp_path / "one.duckdb"
    with pytest.raises(resultloader.ResultLoaderError):
        load_many([str(good), str(bad)], one)
    assert query(db, ledger) == query(one, ledger)
    assert query(db, ledger)[-1][:2] == (str(bad), "failed")


def test_nothing_of_a_failed_atomic_run_is_committed(scheduler, tmp_path):
    sources = []
    for i in range(4):
        path = tmp_path / f"{i}.jsonl"
        path.write_text(jsonl((f"r{i}", i)) + ("not json\n" if i == 2 else ""))
        sources.append(str(path))
    db = tmp_path / "r.duckdb"
    with pytest.raises(resultloader.ResultLoaderError, match=r"2\.jsonl: line 2"):
        load_many(sources, db, engine=scheduler, atomic=True)
    assert query(db, "SELECT count(*) FROM results") == [(0,)]
    ledger = query(db, "SELECT status, error FROM _resultloader_loads")
    assert [status for status, _ in ledger] == ["failed"] and "2.jsonl: line 2" in ledger[0][1]


def test_the_cli_with_a_local_cluster_of_its_own(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.jsonl").write_text(jsonl(("x", i), (f"r{i}", i)))
    command = [str(Path(sys.executable).with_name("resultloader")), "load", "*.jsonl"]
    done = subprocess.run(
        [*command, "--engine", "dask", "--workers", "2", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["outcome"] for line in done.stdout.splitlines()] == ["loaded"] * 3
    rows = query(tmp_path / "results.duckdb", "SELECT id, output FROM results ORDER BY id")
    assert rows == [("r0", "0"), ("r1", "1"), ("r2", "2"), ("x", "2")]


def test_a_stage_on_s3_is_used_and_emptied(bucket, tmp_path):
    """Workers started after the S3 settings (they inherit them), parts staged in moto's S3."""
    name, client = bucket
    sources = bad_rows_files(tmp_path, 3)
    one, on_dask = tmp_path / "one.duckdb", tmp_path / "dask.duckdb"
    options = LoadOptions(on_error="quarantine")
    load_many(sources, one, options)
    staged: list[str] = []

    def look(result: object) -> None:  # parts on S3 are removed at the end, all at once
        listing = client.list_objects_v2(Bucket=name, Prefix="stage/")  # type: ignore[attr-defined]
        staged.extend(obj["Key"] for obj in listing.get("Contents", []))

    stage = f"s3://{name}/stage"
    load_many(sources, on_dask, options, engine="dask", workers=2, parts_dir=stage, each=look)
    assert any(key.endswith("part-000000.parquet") for key in staged)
    assert query(on_dask, ROWS) == query(one, ROWS)
    assert query(on_dask, REJECTS) == query(one, REJECTS)
    assert client.list_objects_v2(Bucket=name).get("KeyCount") == 0  # type: ignore[attr-defined]

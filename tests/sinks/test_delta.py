"""What is particular to DeltaSink: one commit a load and none for a re-run, where the ledger and
rejects live, the CLI's `--into delta:PATH`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import resultloader
from resultloader._memory import parse_size
from resultloader.sinks._stage import COMMIT_MEMORY, DuckDBStage
from resultloader.sinks.delta import sink as delta
from tests.support.row_files import many_rows

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
ROWS = "".join(f'{{"id":"k{i % 40}","output":{{"n":{i}}}}}\n' for i in range(100))


def test_a_load_is_one_commit_and_a_rerun_adds_none(tmp_path, write):
    path = tmp_path / "lake"
    source = write("r.jsonl", ROWS)
    resultloader.load(source, f"delta:{path}")
    table = DeltaTable(str(path))
    created_and_merged = table.version()
    assert created_and_merged == 1  # version 0 creates the table, 1 is the load's write
    report = resultloader.load(source, resultloader.DeltaSink(path))
    assert (report.rows_upserted, report.rows_unchanged, report.duplicates) == (0, 40, 60)
    assert DeltaTable(str(path)).version() == created_and_merged
    changed = write("c.jsonl", '{"id":"k1","output":"new"}\n{"id":"k2","output":{"n":82}}\n')
    report = resultloader.load(changed, f"delta:{path}")
    assert (report.rows_upserted, report.rows_unchanged) == (1, 1)
    table = DeltaTable(str(path))
    assert table.version() == created_and_merged + 1
    ledger = DeltaTable(str(path / "_resultloader_loads")).to_pyarrow_table().to_pylist()
    committed = sorted((r["started_at"], r["load_id"]) for r in ledger if r["rows_upserted"])
    # each commit names the load that made it, as its ledger row does
    assert [h["resultloader.load_id"] for h in table.history(2)] == [
        load_id for _, load_id in reversed(committed)
    ]


def test_a_reload_replaces_the_files_holding_changed_rows_in_one_commit(tmp_path, write):
    path = tmp_path / "lake"
    rows = [f'{{"id":"k{i}","output":{{"n":{i}}},"x":{i}.10}}' for i in range(1000)]
    resultloader.load(write("a.jsonl", "\n".join(rows)), f"delta:{path}")
    first = DeltaTable(str(path))
    assert first.history(1)[0]["resultloader.rows"] == "1000"
    old_files = set(first.file_uris())
    loaded_at = _loaded_at(path)
    rows[3] = '{"id":"k3","output":{"n":3},"x":3.25}'  # only `extra` changed
    rows[7] = '{"id":"k7","output":"changed"}'
    rows.append('{"id":"new","output":null}')
    report = resultloader.load(write("b.jsonl", "\n".join(rows)), f"delta:{path}")
    assert (report.rows_upserted, report.rows_unchanged) == (3, 998)
    table = DeltaTable(str(path))
    assert (table.version(), table.history(1)[0]["resultloader.rows"]) == (2, "3")
    # the old versions' file is gone from the table (copy-on-write), its other rows kept
    assert not old_files & set(table.file_uris())
    ids = table.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 1001
    now = _loaded_at(path)
    assert {k for k in now if now[k] != loaded_at.get(k)} == {"k3", "k7", "new"}
    table = {r["id"]: r for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist()}
    assert (table["k3"]["extra"], table["k7"]["output"]) == ('{"x":3.25}', '"changed"')


def _loaded_at(path):
    table = DeltaTable(str(path)).to_pyarrow_table(columns=["id", "_loaded_at"])
    return dict(zip(table["id"].to_pylist(), table["_loaded_at"].to_pylist(), strict=True))


def test_a_fresh_write_fails_rather_than_duplicate_ids_another_writer_added(
    tmp_path, write, monkeypatch
):
    """The table was empty when read; another writer's rows since then make the one write fail
    (nothing committed, the ledger says why), not add a second row for the same id."""
    path = tmp_path / "lake"
    sink = resultloader.DeltaSink(path)
    sink.begin(resultloader.LoadInfo("b.jsonl", resultloader.LoadOptions()))
    batch = resultloader.RowBatch()
    batch.append("k1", '"mine"', None, None, None, 1)
    sink.write(batch)
    real_commit = DeltaTable.create_write_transaction

    def another_writer_first(table, *args, **kwargs):  # deltalake's commit, another before it
        theirs = pa.Table.from_pylist([{"id": "k1", "metadata": "{}"}], delta.TABLE_SCHEMA)
        write_deltalake(str(path), theirs, mode="append")
        return real_commit(table, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", another_writer_first)
    with pytest.raises(resultloader.SinkError, match="another writer committed"):
        sink.commit(resultloader.LoadReport("b.jsonl", rows_read=1))
    table = DeltaTable(str(path))
    assert [(r["id"], r["output"]) for r in table.to_pyarrow_table().to_pylist()] == [("k1", None)]
    # the load's uncommitted file is removed: only the other writer's is left
    assert sorted(p.name for p in path.glob("*.parquet")) == [
        os.path.basename(f) for f in table.file_uris()
    ]
    ledger = DeltaTable(str(path / "_resultloader_loads")).to_pyarrow_table().to_pylist()
    assert [r["status"] for r in ledger] == ["failed"]


def test_ledger_and_rejects_are_delta_tables_inside_the_table(tmp_path, write):
    path = tmp_path / "lake"
    resultloader.load(
        write("r.jsonl", '{"id":"a"}\nnope\n'), f"delta:{path}", on_error="quarantine"
    )
    ledger = DeltaTable(str(path / "_resultloader_loads")).to_pyarrow_table().to_pylist()
    assert [(r["status"], r["rows_upserted"], r["bad_rows"]) for r in ledger] == [
        ("committed", 1, 1)
    ]
    rejects = DeltaTable(str(path / "_rejects")).to_pyarrow_table().to_pylist()
    assert [(r["line"], r["raw"], r["load_id"]) for r in rejects] == [
        (2, "nope", ledger[0]["load_id"])
    ]
    assert DeltaTable(str(path)).to_pyarrow_table().column("id").to_pylist() == ["a"]


def test_the_cli_loads_into_delta(tmp_path, write):
    source = write("r.jsonl", ROWS)
    args = [*CLI, "load", str(source), "--into", f"delta:{tmp_path / 'lake'}", "--json"]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_upserted"] == 40
    again = subprocess.run([*args, "--table", "other"], capture_output=True, text=True)
    assert again.returncode == 1
    assert again.stderr == (
        "error: a Delta target is a table itself: table 'other' does not apply "
        "(its location is delta:PATH)\n"
    )


def test_the_table_reads_back_with_duckdb(tmp_path, write):
    """Delta's files are plain Parquet: any reader gets the exact JSON text back."""
    import duckdb

    path = tmp_path / "lake"
    big = '{"id":"a","output":{"v":123456789012345678901234567890.5}}\n'
    resultloader.load(write("r.jsonl", big), f"delta:{path}")
    files = DeltaTable(str(path)).file_uris()
    got = duckdb.sql(f"SELECT id, output FROM read_parquet({files!r})").fetchall()
    assert got == [("a", '{"v":123456789012345678901234567890.5}')]


@pytest.mark.parametrize("target", ["delta:", "duckdb:"])
def test_a_prefix_without_a_location_is_refused(target, write):
    with pytest.raises(resultloader.SinkError, match="names no"):
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), target)


def test_a_load_merges_into_the_table_as_it_is_at_commit(tmp_path, write):
    """Another writer's commit during the load is not lost, nor does it fail the load: the
    merge reads the table at commit, and the load's rows win where they differ."""
    path = tmp_path / "lake"
    resultloader.load(write("a.jsonl", ROWS), f"delta:{path}")
    sink = resultloader.DeltaSink(path)
    sink.begin(resultloader.LoadInfo("b.jsonl", resultloader.LoadOptions()))
    batch = resultloader.RowBatch()
    batch.append("k1", '"mine"', None, None, None, 1)
    sink.write(batch)
    DeltaTable(str(path)).update(new_values={"output": '"theirs"'}, predicate="id IN ('k1', 'k2')")
    result = sink.commit(resultloader.LoadReport("b.jsonl", rows_read=1))
    assert (result.upserted, result.unchanged) == (1, 0)
    got = {r["id"]: r["output"] for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist()}
    assert (got["k1"], got["k2"], len(got)) == ('"mine"', '"theirs"', 40)


@pytest.mark.parametrize(("memory", "threads"), [("1GB", 3), ("256MB", 1)])
def test_the_stage_takes_the_loads_memory_budget_and_threads(memory, threads):
    """Postgres and Delta stage their rows in a DuckDB of their own: inside `--memory`."""
    options = resultloader.LoadOptions(memory=memory, threads=threads)
    stage = DuckDBStage()
    stage.begin(resultloader.LoadInfo("r.jsonl", options))
    try:
        row = stage._require().execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        )
        limit, got_threads = row.fetchone()  # type: ignore[misc]
    finally:
        stage.close()
    budget = options.budget()
    assert got_threads == threads
    # DuckDB's share of the budget, less what the sink's writer holds at commit
    staged = dataclasses.replace(budget, memory=budget.memory - COMMIT_MEMORY)
    assert abs(parse_size(limit.replace(" ", "")) - staged.duckdb_memory) < 2**20
    assert staged.duckdb_memory < budget.duckdb_memory


def test_a_load_at_16_threads_as_on_a_16_core_server_fits_the_default_budget(tmp_path):
    """DuckDB's threads need memory (16 threads in 64 MB failed with "Out of Memory"): the stage
    and the Parquet write run at 16 threads within the default budget's share."""
    source, path = tmp_path / "many.jsonl", tmp_path / "lake"
    distinct = many_rows(source)
    options = resultloader.LoadOptions(threads=16)
    report = resultloader.load(source, f"delta:{path}", options=options)
    assert (report.rows_read, report.rows_upserted) == (1_000_000, distinct)
    ids = DeltaTable(str(path)).to_pyarrow_table(columns=["id"]).column("id")
    assert len(ids) == len(set(ids.to_pylist())) == distinct

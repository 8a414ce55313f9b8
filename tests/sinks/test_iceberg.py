"""The Iceberg sink beyond the shared contract (tests/test_sink_semantics.py runs that): one
snapshot a load, a concurrent writer, typed columns in Iceberg types, the target's form, and a
catalog that is not configured. A SQL catalog on SQLite in a temp dir, its warehouse beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    DoubleType,
    LongType,
    StringType,
    TimestampType,
)

import resultloader
from resultloader import LoadOptions, SinkError
from resultloader._columns import parse_column
from resultloader.sinks.registry import sink_for
from tests.support.sink_targets import IcebergTarget, iceberg_env

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
INTO = "iceberg:lake/ns.results"


@pytest.fixture
def target(tmp_path, monkeypatch) -> IcebergTarget:
    env = iceberg_env("lake", str(tmp_path), str(tmp_path / "warehouse"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return IcebergTarget(INTO, env=env)


def rows(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_each_load_that_changes_rows_is_one_snapshot_named_by_its_ledger_row(target, write):
    first = write("a.jsonl", rows(*(f'{{"id":"k{i}","output":{i}}}' for i in range(10))))
    resultloader.load(first, INTO)
    assert target.snapshots() == 1
    # a tenth changed, one new: the delete of the old versions and the new rows, one snapshot
    second = write("b.jsonl", rows('{"id":"k3","output":"new"}', '{"id":"k10","output":10}'))
    report = resultloader.load(second, INTO)
    assert (report.rows_upserted, report.rows_unchanged) == (2, 0)
    table = target._table(target.name)
    assert len(table.snapshots()) == 2
    ledger = target.ledger()
    summary = table.current_snapshot().summary
    assert summary["resultloader.load_id"] == ledger[-1]["load_id"]
    got = {k: v["output"] for k, v in target.rows().items()}
    assert got == {**{f"k{i}": i for i in range(11)}, "k3": "new"}
    resultloader.load(second, INTO)  # nothing changed: no snapshot
    assert target.snapshots() == 2


def test_a_failed_load_makes_no_snapshot(target, write):
    resultloader.load(write("a.jsonl", rows('{"id":"a","output":1}')), INTO)
    with pytest.raises(resultloader.ParseError):
        resultloader.load(write("b.jsonl", rows('{"id":"a","output":2}', "{broken")), INTO)
    assert target.snapshots() == 1
    assert target.rows()["a"]["output"] == 1


def _race(monkeypatch, other_load) -> None:
    """Run `other_load` (a whole load by a second writer) just before the first commit of a
    snapshot to ns.results: the catalog then holds a newer table than the one this load read,
    a real concurrent commit, detected by pyiceberg's own checks."""
    commit = SqlCatalog.commit_table
    raced = []

    def racing_commit(self, table, requirements, updates):  # type: ignore[no-untyped-def]
        adds = any(type(u).__name__ == "AddSnapshotUpdate" for u in updates)
        if adds and table.name() == ("ns", "results") and not raced:
            raced.append(True)
            other_load()
        return commit(self, table, requirements, updates)

    monkeypatch.setattr(SqlCatalog, "commit_table", racing_commit)


@pytest.mark.parametrize("table_before", ["empty", "with rows"])
def test_a_concurrent_commit_fails_the_loser_in_one_line_and_a_rerun_loads_it(
    target, write, monkeypatch, table_before
):
    if table_before == "with rows":
        resultloader.load(write("old.jsonl", rows('{"id":"a","output":0}')), INTO)
    mine = write("mine.jsonl", rows('{"id":"a","output":"mine"}', '{"id":"m","output":1}'))
    theirs = write("theirs.jsonl", rows('{"id":"a","output":"theirs"}', '{"id":"t","output":1}'))
    _race(monkeypatch, lambda: resultloader.load(theirs, INTO))
    with pytest.raises(SinkError) as caught:
        resultloader.load(mine, INTO)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{INTO}: another writer committed to the table during this load")
    got = {k: v["output"] for k, v in target.rows().items()}
    assert got == {"a": "theirs", "t": 1}  # theirs whole, nothing of mine
    statuses = {r["source"]: r["status"] for r in target.ledger()}
    assert (statuses[str(mine)], statuses[str(theirs)]) == ("failed", "committed")
    monkeypatch.undo()
    for name, value in target.env.items():
        monkeypatch.setenv(name, value)
    report = resultloader.load(mine, INTO)  # the rerun
    assert report.rows_upserted == 2
    got = {k: v["output"] for k, v in target.rows().items()}
    assert got == {"a": "mine", "m": 1, "t": 1}
    assert len(target.rows()) == 3  # one row an id (rows() checks it too)


COLUMNS = (
    parse_column("score=output.score::double"),
    parse_column("total=output.total::bigint"),
    parse_column("price=output.price::decimal(20,10)"),
    parse_column("ok=output.ok::boolean"),
    parse_column("seen_at=output.at::timestamp"),
    parse_column("raw=output.raw::json"),
    parse_column("label=output.label"),
)
TYPES = {
    "score": DoubleType(),
    "total": LongType(),
    "price": DecimalType(20, 10),
    "ok": BooleanType(),
    "seen_at": TimestampType(),
    "raw": StringType(),
    "label": StringType(),
}


def test_typed_columns_are_iceberg_types_with_exact_numbers(target, write):
    price = "1234567890.0123456789"  # 20 digits: a double would round it
    line = (
        f'{{"id":"a","output":{{"score":0.5,"total":9007199254740993,"price":{price},'
        '"ok":true,"at":"2026-01-02T03:04:05+01:00","raw":{"n":1e400},"label":"x"}}'
    )
    report = resultloader.load(write("t.jsonl", rows(line)), INTO, LoadOptions(columns=COLUMNS))
    assert report.rows_upserted == 1
    table = target._table(target.name)
    schema = table.schema()
    assert {name: schema.find_field(name).field_type for name in TYPES} == TYPES
    (row,) = table.scan().to_arrow().to_pylist()
    assert row["price"] == Decimal(price)
    assert row["total"] == 9007199254740993
    assert (row["score"], row["ok"], row["label"]) == (0.5, True, "x")
    assert row["seen_at"].isoformat() == "2026-01-02T02:04:05"  # UTC, without a zone
    assert Decimal(json.loads(row["raw"], parse_float=Decimal)["n"]) == Decimal("1e400")
    # a row changed only in a typed value's field is rewritten with its new values
    again = line.replace('"total":9007199254740993', '"total":1')
    report = resultloader.load(write("u.jsonl", rows(again)), INTO, LoadOptions(columns=COLUMNS))
    assert report.rows_upserted == 1
    (row,) = target._table(target.name).scan().to_arrow().to_pylist()
    assert (row["total"], row["price"]) == (1, Decimal(price))


def test_a_typed_column_keeps_its_type(target, write):
    path = write("t.jsonl", rows('{"id":"a","output":{"total":1}}'))
    resultloader.load(path, INTO, LoadOptions(columns=(COLUMNS[1],)))
    wider = parse_column("total=output.total::double")
    with pytest.raises(SinkError, match="column 'total' is long, this load declares it double"):
        resultloader.load(path, INTO, LoadOptions(columns=(wider,)))
    assert [r["status"] for r in target.ledger()] == ["committed"]  # refused before it began


def test_a_value_that_does_not_fit_its_column_is_quarantined(target, write):
    text = rows('{"id":"a","output":{"total":1}}', '{"id":"b","output":{"total":"many"}}')
    options = LoadOptions(columns=(COLUMNS[1],), on_error="quarantine")
    report = resultloader.load(write("t.jsonl", text), INTO, options)
    assert report.bad_rows == 1 and sorted(target.rows()) == ["a"]
    ((line, reason, raw),) = target.rejects()  # the value that does not fit, as the others keep
    assert (line, raw) == (2, '"many"') and reason.startswith("column 'total': not a bigint")


@pytest.mark.parametrize(
    "into",
    ["iceberg:lake", "iceberg:lake/results", "iceberg:/ns.results", "iceberg:lake/ns.a-b"],
)
def test_a_target_without_namespace_and_table_is_refused(into):
    with pytest.raises(
        ValueError, match=r"Iceberg target is iceberg:CATALOG/NAMESPACE\.TABLE|name"
    ):
        sink_for(into)


def test_table_is_refused_for_an_iceberg_target():
    with pytest.raises(ValueError, match="names its table"):
        sink_for(INTO, "other")


def test_an_unconfigured_catalog_is_one_line_naming_it(tmp_path, write):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*CLI, "load", str(write("r.jsonl", rows('{"id":"a"}'))), "--into", "iceberg:nowhere/n.t"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0
    assert "cannot open the Iceberg catalog 'nowhere'" in done.stderr
    assert "PYICEBERG_CATALOG__NOWHERE__URI" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_command_line_loads_and_lists_the_history(target, write):
    path = write("r.jsonl", rows('{"id":"a","output":1}', "oops"))
    env = {**os.environ, **target.env}
    base = [*CLI]
    done = subprocess.run(
        [*base, "load", str(path), "--into", INTO, "--on-error", "quarantine", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [*base, "history", "--from", INTO, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    (load,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert (load["target"], load["status"], load["bad_rows"]) == ("ns.results", "committed", 1)
    assert target.reject_sources() == [(str(path), 2)]


def test_rows_kept_from_a_file_written_before_a_column_was_added_hold_null(target, write):
    resultloader.load(write("a.jsonl", rows('{"id":"a","output":{"total":1}}', '{"id":"b"}')), INTO)
    changed = write("b.jsonl", rows('{"id":"a","output":{"total":2}}'))
    report = resultloader.load(changed, INTO, LoadOptions(columns=(COLUMNS[1],)))
    assert (report.rows_upserted, len(target._table(target.name).scan().plan_files())) == (1, 1)
    got = {r["id"]: r["total"] for r in target._table(target.name).scan().to_arrow().to_pylist()}
    assert got == {"a": 2, "b": None}  # b copied from the replaced file, without the column


def test_a_reload_declaring_a_new_column_fills_it_on_unchanged_rows(target, write):
    path = write("a.jsonl", rows('{"id":"a","output":{"total":1}}', '{"id":"b","output":{}}'))
    resultloader.load(path, INTO)
    declared = LoadOptions(columns=(COLUMNS[1],))
    report = resultloader.load(path, INTO, declared)  # the same rows: `a` gains its total
    assert (report.rows_upserted, report.rows_unchanged) == (1, 1)
    assert _totals(target) == {"a": 1, "b": None}
    again = resultloader.load(path, INTO, declared)  # the typed values compared too
    assert (again.rows_upserted, again.rows_unchanged) == (0, 2)
    plain = resultloader.load(path, INTO)  # no column declared: the rows' values stay
    assert (plain.rows_upserted, plain.rows_unchanged) == (0, 2)
    assert _totals(target) == {"a": 1, "b": None}


def _totals(target: IcebergTarget) -> dict[str, int | None]:
    rows = target._table(target.name).scan(selected_fields=("id", "total")).to_arrow()
    return {r["id"]: r["total"] for r in rows.to_pylist()}

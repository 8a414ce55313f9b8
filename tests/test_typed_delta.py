"""Typed columns in a Delta table: Delta's own types, a new column in the load's own commit, a
changed type refused before anything is written, and the ledger's record of them (history)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import resultloader
from resultloader import LoadOptions, parse_column
from resultloader.providers.openai import MAPPING
from tests.support.openai_lines import EXPECTED, OPENAI_LINES, TYPED, jsonl, run
from tests.support.typed_targets import TypedTarget

ROWS = [
    {"id": "a", "output": {"n": 7, "x": 1.25, "p": "12.50", "ok": True,
                           "at": "2024-01-02T03:04:05Z", "tags": ["x", {"y": 0.1}]}},
    {"id": "b", "output": {"n": None, "x": 2, "p": 3, "ok": False, "at": 1700000000}},
]  # fmt: skip
OWN = tuple(
    parse_column(spec)
    for spec in (
        "Count=output.n::bigint",
        "x=output.x::double",
        "price=output.p::decimal(5,2)",
        "ok=output.ok::boolean",
        "at=output.at::timestamp",
        "tags=output.tags::json",
        "label=output.tags[0]",
    )
)
UTC = dt.timezone.utc


def test_a_delta_table_stores_each_column_in_delta_types(write, tmp_path):
    text = "".join(json.dumps(r) + "\n" for r in ROWS)
    path = write("r.jsonl", text.replace('"y": 0.1', '"y": 0.1000000000000000055511151231257827'))
    lake = tmp_path / "lake"
    resultloader.load(path, resultloader.DeltaSink(lake), LoadOptions(columns=OWN))
    table = DeltaTable(str(lake))
    types = {f.name: f.type.type for f in table.schema().fields}
    assert [types[c.name] for c in OWN] == [
        "long", "double", "decimal(5,2)", "boolean", "timestamp", "string", "string"
    ]  # fmt: skip
    rows = {r["id"]: r for r in table.to_pyarrow_table().to_pylist()}
    assert {k: rows["a"][k] for k in ("Count", "x", "price", "ok", "at", "label")} == {
        "Count": 7,
        "x": 1.25,
        "price": Decimal("12.50"),
        "ok": True,
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "label": "x",
    }
    # json: its exact text, the long decimal as the source wrote it
    assert rows["a"]["tags"] == '["x",{"y":0.1000000000000000055511151231257827}]'
    assert (rows["b"]["Count"], rows["b"]["price"], rows["b"]["ok"]) == (
        None,
        Decimal("3.00"),
        False,
    )
    assert rows["b"]["at"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    version = table.version()
    again = resultloader.load(path, resultloader.DeltaSink(lake), LoadOptions(columns=OWN))
    assert (again.rows_upserted, again.rows_unchanged) == (0, 2)
    assert DeltaTable(str(lake)).version() == version  # nothing changed: no commit


def test_a_new_column_comes_with_the_loads_own_commit(write, tmp_path):
    path, lake = write("r.jsonl", jsonl(OPENAI_LINES)), tmp_path / "lake"
    # the rows as the provider keys them, without its columns
    resultloader.load(path, resultloader.DeltaSink(lake), LoadOptions(mapping=MAPPING))
    before = DeltaTable(str(lake)).version()
    report = resultloader.load(
        path, resultloader.DeltaSink(lake), LoadOptions(provider="openai-batch")
    )
    assert report.rows_upserted == 5
    assert report.statuses == {"succeeded": 2, "errored": 1, "expired": 1, "cancelled": 1}
    assert report.tokens == 33
    table = DeltaTable(str(lake))
    assert table.version() == before + 1  # the schema's change and the rows: one commit
    assert "total_tokens" in pa.schema(table.schema().to_arrow()).names
    target = TypedTarget("delta", tmp_path)
    target.lake = lake
    assert [tuple(r) for r in target.query(TYPED)] == EXPECTED


def test_a_changed_type_is_refused_before_anything_is_written(write, tmp_path):
    path, lake = write("r.jsonl", jsonl(OPENAI_LINES)), tmp_path / "lake"
    resultloader.load(path, resultloader.DeltaSink(lake), LoadOptions(provider="openai-batch"))
    ledger = DeltaTable(str(lake / "_resultloader_loads"))
    versions = DeltaTable(str(lake)).version(), ledger.version()
    wider = (parse_column("total_tokens=output.usage.total_tokens::decimal(10,2)"),)
    with pytest.raises(
        resultloader.SinkError,
        match="column 'total_tokens' of the Delta table is long, this load declares it "
        r"decimal\(10,2\)",
    ):
        resultloader.load(
            path, resultloader.DeltaSink(lake), LoadOptions(provider="openai-batch", columns=wider)
        )
    ledger = DeltaTable(str(lake / "_resultloader_loads"))
    assert (DeltaTable(str(lake)).version(), ledger.version()) == versions


@pytest.mark.parametrize("kind", ["duckdb", "delta"])
def test_history_shows_the_columns_a_load_wrote(write, tmp_path, kind):
    path = write("r.jsonl", jsonl(OPENAI_LINES))
    target = TypedTarget(kind, tmp_path)
    own = "--column", "tokens=output.usage.total_tokens::bigint"
    done = run("load", str(path), "--as", "openai-batch", *own, "--into", target.into, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = run("history", "--from", target.into, "--json", cwd=tmp_path)
    (load,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert load["columns"].startswith("status text, model text, text text")
    assert load["columns"].endswith("error_message text, tokens bigint")
    one = run("history", load["load_id"][:8], "--from", target.into, cwd=tmp_path).stdout
    assert f"columns:        {load['columns']}" in one


def test_a_delta_table_on_s3_takes_typed_columns_through_deltalakes_writer(
    write, s3_endpoint, monkeypatch
):
    import boto3

    from tests.support.s3 import DELTA_S3_ENV

    for name, value in {**DELTA_S3_ENV, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    lake = f"s3://{bucket}/results"
    path = write("r.jsonl", jsonl(OPENAI_LINES))
    resultloader.load(path, resultloader.DeltaSink(lake), LoadOptions(mapping=MAPPING))
    options = LoadOptions(provider="openai-batch")
    first = resultloader.load(path, resultloader.DeltaSink(lake), options)  # a merge, new columns
    again = resultloader.load(path, resultloader.DeltaSink(lake), options)
    assert (first.rows_upserted, again.rows_upserted, again.rows_unchanged) == (5, 0, 5)
    rows = DeltaTable(lake).to_pyarrow_table().to_pylist()
    found = sorted((r["id"], r["status"], r["total_tokens"]) for r in rows)
    assert found == [(e[0], e[1], e[7]) for e in EXPECTED]

"""shopify-bulk end to end, against a real API on loopback (resultloader.testing.FakeApi) whose
payloads the official SDKs parse as their own.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import resultloader
from resultloader.cli import main
from resultloader.testing import FakeApi, FakeClock, MemorySink, Reply
from tests.support.provider_apis import (
    BIG,
    SKEY,
    ledger,
    lines,
    no_secret,
)

# -- Shopify bulk operations ---------------------------------------------------------------------

SHOP_GQL = "/admin/api/2026-01/graphql.json"
OP = "gid://shopify/BulkOperation/720918"
SHOP_LINES = lines(
    {"id": "gid://shopify/Product/1", "title": "Shirt", "price": "19.99"},
    {
        "id": "gid://shopify/ProductVariant/11",
        "sku": "S-1",
        "__parentId": "gid://shopify/Product/1",
    },
    {"id": "gid://shopify/Product/2", "title": "Hat", "stock": BIG},
)


@pytest.fixture
def shop(monkeypatch):
    fake = FakeApi({"X-Shopify-Access-Token": SKEY})
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SKEY)
    yield fake
    fake.close()
    assert fake.leaks == []


def bulk(status: str, field: str = "bulkOperation", **more: Any) -> dict[str, Any]:
    node = {
        "id": OP,
        "status": status,
        "errorCode": None,
        "objectCount": "3",
        "rootObjectCount": "2",
        "fileSize": "300",
        "url": None,
        "partialDataUrl": None,
        **more,
    }
    return {"data": {field: node}, "extensions": {"cost": {"requestedQueryCost": 1}}}


def shop_ingest(fake: FakeApi, clock: FakeClock, sink: Any, op: str = OP, **kw: Any):
    job = resultloader.Job(op, params={"shop": "demo.myshopify.com"})
    return resultloader.ingest(
        "shopify-bulk",
        job,
        sink,
        poll=clock.policy(),
        api=resultloader.ApiAccess(base_url=fake.api_url),
        **kw,
    )


def test_shopify_bulk_operation_keyed_by_id_with_parent_in_extra(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES, "application/jsonl")
    shop.script(
        SHOP_GQL, bulk("CREATED"), bulk("RUNNING"), bulk("COMPLETED", url=shop.link("bulk.jsonl"))
    )
    sink = MemorySink()
    report = shop_ingest(shop, clock, sink)
    assert (report.rows_read, report.status) == (3, "COMPLETED")
    assert sink.rows["gid://shopify/Product/1"]["output"] == {"title": "Shirt", "price": "19.99"}
    variant = sink.rows["gid://shopify/ProductVariant/11"]
    assert variant["output"] == {"sku": "S-1"}
    assert variant["extra"] == {"__parentId": "gid://shopify/Product/1"}
    assert sink.rows["gid://shopify/Product/2"]["output"]["stock"] == BIG
    query = json.loads(shop.api_seen[0].body)
    assert query["variables"] == {"id": OP} and "bulkOperation(id: $id)" in query["query"]
    assert shop.api_seen[0].method == "POST" and len(clock.sleeps) == 2


def test_shopify_default_is_the_current_query_operation(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    shop.script(SHOP_GQL, bulk("COMPLETED", "currentBulkOperation", url=shop.link("bulk.jsonl")))
    report = shop_ingest(shop, clock, MemorySink(), op="")
    assert report.rows_read == 3
    assert "currentBulkOperation(type: QUERY)" in json.loads(shop.api_seen[0].body)["query"]


def test_shopify_an_operation_that_matched_nothing_loads_nothing(shop, clock):
    shop.script(SHOP_GQL, bulk("COMPLETED", objectCount="0"))
    assert shop_ingest(shop, clock, MemorySink()).rows_read == 0


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        ("FAILED", resultloader.JobFailed, "ACCESS_DENIED"),
        ("CANCELED", resultloader.JobCancelled, "no results"),
        ("EXPIRED", resultloader.JobExpired, "expired"),
    ],
)
def test_shopify_terminal_failures(shop, clock, status, error, words):
    shop.script(SHOP_GQL, bulk(status, errorCode="ACCESS_DENIED"))
    with pytest.raises(error, match=words):
        shop_ingest(shop, clock, MemorySink())


def test_shopify_expired_link_is_renewed_and_429_waited_out(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    stale, fresh = shop.link("bulk.jsonl", valid=False), shop.link("bulk.jsonl")
    shop.script(
        SHOP_GQL,
        Reply(429, {"errors": "Throttled"}, {"Retry-After": "2"}),
        bulk("COMPLETED", url=stale),
        bulk("COMPLETED", url=fresh),
    )
    report = shop_ingest(shop, clock, MemorySink())
    assert report.rows_read == 3 and 2 in clock.sleeps and len(shop.files_seen) == 2


def test_shopify_dropped_download_whose_link_then_expired(shop, clock):
    shop.add_file("bulk.jsonl", SHOP_LINES)
    first, fresh = shop.link("bulk.jsonl", expire_after=50), shop.link("bulk.jsonl")
    shop.script(SHOP_GQL, bulk("COMPLETED", url=first), bulk("COMPLETED", url=fresh))
    sink = MemorySink()
    assert shop_ingest(shop, clock, sink).rows_read == 3 and len(sink.rows) == 3


def shop_cli(fake: FakeApi, db, *more: str):
    args = ["ingest", "shopify-bulk", "--shop", "demo.myshopify.com", "--operation-id", OP]
    args += ["--base-url", fake.api_url, "--into", str(db), "--poll-interval", "0.001", *more]
    return CliRunner().invoke(main, args, env={"SHOPIFY_ACCESS_TOKEN": SKEY})


def test_shopify_partial_data_only_with_partial(shop, tmp_path):
    shop.add_file("partial.jsonl", SHOP_LINES)
    url = shop.link("partial.jsonl")
    shop.script(SHOP_GQL, bulk("FAILED", errorCode="TIMEOUT", partialDataUrl=url))
    db = tmp_path / "r.duckdb"
    refused = shop_cli(shop, db, "-q")
    assert refused.exit_code == 1
    assert refused.stderr.strip().count("\n") == 0 and "--partial" in refused.stderr
    assert "TIMEOUT" in refused.stderr
    assert not db.exists() or ledger(db) == []
    loaded = shop_cli(shop, db, "--partial", "--json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["status"] == "FAILED (partial)"
    assert ledger(db) == [("committed", "FAILED (partial)", 3)]
    no_secret(shop, refused.output, loaded.output)


def test_shopify_needs_a_shop(shop, tmp_path):
    args = ["ingest", "shopify-bulk", "--into", str(tmp_path / "r.duckdb")]
    result = CliRunner().invoke(main, args, env={"SHOPIFY_ACCESS_TOKEN": SKEY})
    assert result.exit_code == 1 and "--shop NAME.myshopify.com" in result.output

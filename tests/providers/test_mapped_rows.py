"""Mapped rows (a provider's RowMapping) share the load path: renewed links, last-wins,
on_error, and every route.

Time is faked (resultloader.testing.FakeClock): what is checked is what was asked to be slept.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader.testing import MemorySink, Reply
from tests.support.provider_apis import (
    BIG,
    DONE,
    OAI_BATCH,
    OAI_ERR,
    OAI_OUT,
    oai_batch,
)

# -- mapped rows share the load path --------------------------------------------------------------


def test_a_refused_error_file_is_renewed_as_the_error_file(oai, clock):
    oai.script(OAI_BATCH, oai_batch("completed", **DONE))
    oai.script("/v1/files/file-out/content", Reply(200, OAI_OUT))
    refused = Reply(403, {"error": {"message": "link expired"}})
    oai.script("/v1/files/file-err/content", refused, Reply(200, OAI_ERR))
    sink = MemorySink()
    report = resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    assert report.rows_read == 3 and set(sink.rows) == {"r1", "r2", "r3"}


MESSY = OAI_OUT + (
    b'{"id": "batch_req_9", "custom_id": "r1", "response": {"status_code": 200, '
    b'"request_id": "req_9", "body": {"n": 2}}}\n'
    b"{not json\n"
    b'{"id": "batch_req_8", "response": null}\n'
)


@pytest.mark.parametrize("target", ["memory", "duckdb"])
def test_mapped_rows_follow_last_wins_and_on_error_on_every_sink(oai, clock, tmp_path, target):
    oai.script(OAI_BATCH, oai_batch("completed", output_file_id="file-out"))
    oai.script("/v1/files/file-out/content", Reply(200, MESSY))
    sink: Any = MemorySink() if target == "memory" else tmp_path / "r.duckdb"
    with pytest.raises(resultloader.ParseError, match=r"line 4.*invalid JSON"):
        resultloader.ingest("openai-batch", "batch_abc", sink, poll=clock.policy())
    report = resultloader.ingest(
        "openai-batch",
        "batch_abc",
        sink,
        options=resultloader.LoadOptions(on_error="quarantine"),
        poll=clock.policy(),
    )
    assert (report.rows_read, report.bad_rows) == (3, 2)
    if target == "memory":
        outputs = {k: v["output"] for k, v in sink.rows.items()}
        reasons = [r.reason for r in sink.rejects]
    else:
        con = duckdb.connect(str(sink), read_only=True)
        outputs = {
            k: v and json.loads(v)
            for k, v in con.execute("SELECT id, output FROM results").fetchall()
        }
        reasons = [
            r[0] for r in con.execute("SELECT reason FROM results_rejects ORDER BY line").fetchall()
        ]
        con.close()
    assert outputs == {"r1": {"n": 2}, "r2": None}  # the last r1 wins
    assert reasons[1] == "no 'custom_id' field" and reasons[0].startswith("invalid JSON")


@pytest.mark.parametrize("route", ["jsonl", "array", "items"])
@pytest.mark.parametrize("target", ["memory", "duckdb"])
def test_a_mapping_reads_the_same_on_every_route(tmp_path, route, target):
    from resultloader.providers import RowMapping, When

    mapping = RowMapping(
        "custom_id", "response.body", When("response.status_code", between=(200, 299)), ("id",)
    )
    items = [json.loads(line) for line in OAI_OUT.splitlines()]
    body = {
        "jsonl": OAI_OUT,
        "array": json.dumps(items).encode(),
        "items": json.dumps({"data": items}).encode(),
    }[route]
    path = tmp_path / ("r.jsonl" if route == "jsonl" else "r.json")
    path.write_bytes(body)
    options = resultloader.LoadOptions(mapping=mapping)
    if target == "memory":
        sink = MemorySink()
        resultloader.load(path, sink, options)
        found = {k: (v["output"], v["extra"]) for k, v in sink.rows.items()}
    else:
        db = tmp_path / "r.duckdb"
        resultloader.load(path, db, options)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("SELECT id, output, extra FROM results").fetchall()
        con.close()
        found = {k: (o and json.loads(o), json.loads(e)) for k, o, e in rows}
    assert found["r2"] == (None, {"id": "batch_req_2"})
    assert found["r1"][0] == {"n": BIG, "ok": True} and found["r1"][1] == {"id": "batch_req_1"}

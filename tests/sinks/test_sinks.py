"""Sinks: MemorySink, per-batch and per-row functions, a custom Sink, and DuckDBSink's upserts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest

import resultloader
from resultloader import (
    CommitResult,
    LoadInfo,
    LoadOptions,
    LoadReport,
    ParseError,
    ResultLoaderError,
    RowBatch,
    Sink,
    SinkCapabilities,
)
from resultloader.sinks.callable import BatchFunctionSink, RowFunctionSink, sink_from_callable
from resultloader.testing import MemorySink
from tests.support.duckdb_files import query
from tests.support.rows import SEED_ROWS

BIG = 123456789012345678901234567890
LONG = "0.1000000000000000055511151231257827"


# -- MemorySink ----------------------------------------------------------------------------------


def test_memory_sink_commits_decoded_rows(write):
    sink = MemorySink()
    report = resultloader.load(write("r.jsonl", SEED_ROWS + '{"id":"x","tag":1}\n'), sink)
    assert set(sink.rows) == {"product_12345", "product_67890", "x"}
    assert sink.rows["product_12345"] == {
        "id": "product_12345",
        "output": {"actions": [], "labels": [{"label": "policy.example_violation"}], "fields": {}},
        "metadata": {"source": "backfill"},
        "url": "https://app.safetykit.com/...",
        "extra": None,
    }
    assert sink.rows["x"] == {
        "id": "x",
        "output": None,
        "metadata": {},
        "url": None,
        "extra": {"tag": 1},
    }
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (3, 3, 0)
    assert len(sink.loads) == 1 and sink.loads[0].source.endswith("r.jsonl")


def test_memory_sink_shows_nothing_before_commit_and_abort_discards():
    sink = MemorySink()
    sink.begin(LoadInfo("s", LoadOptions()))
    batch = RowBatch()
    batch.append("a", "1", None, None, None, 1)
    sink.write(batch)
    assert sink.rows == {}
    sink.abort("boom")
    assert sink.rows == {}
    sink.begin(LoadInfo("s", LoadOptions()))
    sink.write(batch)
    result = sink.commit(LoadReport("s"))
    assert sink.rows["a"]["output"] == 1
    assert result == CommitResult(upserted=1, unchanged=0, duplicates=0)


def test_a_failed_load_leaves_a_memory_sink_as_it_was(write):
    sink = MemorySink()
    resultloader.load(write("a.jsonl", '{"id":"a","output":1}\n'), sink)
    bad = write("b.jsonl", '{"id":"a","output":2}\n{"id":"b"}\nnot json\n')
    with pytest.raises(ParseError) as info:
        resultloader.load(bad, sink)
    assert info.value.line == 3
    assert sink.rows == {"a": {"id": "a", "output": 1, "metadata": {}, "url": None, "extra": None}}


def test_memory_sink_last_row_wins_across_batches_and_counts(write):
    lines = "".join(f'{{"id":"k{i % 3}","output":{i}}}\n' for i in range(10))
    sink = MemorySink()
    options = LoadOptions(format="json", batch_rows=2)
    doc = "[" + ",".join(lines.splitlines()) + "]"
    report = resultloader.load(write("r.json", doc), sink, options=options)
    assert {k: v["output"] for k, v in sink.rows.items()} == {"k0": 9, "k1": 7, "k2": 8}
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (10, 3, 7)
    again = resultloader.load(write("r.json", doc), sink, options=options)
    assert (again.rows_upserted, again.rows_unchanged) == (0, 3)


def test_memory_sink_keeps_quarantined_rejects_and_not_skipped_ones(write):
    path = write("r.jsonl", '{"id":"a"}\nnot json\n{"no":"id"}\n')
    sink = MemorySink()
    resultloader.load(path, sink, on_error="skip")
    assert sink.rejects == []
    report = resultloader.load(path, sink, on_error="quarantine")
    assert report.bad_rows == 2
    assert [(r.line, r.raw) for r in sink.rejects] == [(2, "not json"), (3, '{"no":"id"}')]


# -- per-row and per-batch functions -------------------------------------------------------------


def test_a_per_row_function_gets_the_seeds_four_arguments_and_extra_by_keyword(write):
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def upsert_result(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))

    text = (
        f'{{"id":"n","output":{{"big":{BIG},"d":{LONG},"f":0.5}},"url":"https://u"}}\n'
        '{"id":"z","output":null,"metadata":null,"other":1}\n'
    )
    resultloader.load(write("r.jsonl", text), upsert_result)
    assert calls == [
        (("n", {"big": BIG, "d": Decimal(LONG), "f": 0.5}, {}, "https://u"), {"extra": {}}),
        (("z", None, {}, None), {"extra": {"other": 1}}),  # **kwargs: the other fields
    ]
    big = calls[0][0][1]["big"]
    assert type(big) is int and big == BIG


def test_the_seed_shaped_function_by_name(write):
    got: dict[str, tuple[Any, Any, Any]] = {}

    def upsert_result(id, output, metadata, url):  # the seed's signature, names and all
        got[id] = (output, metadata, url)

    resultloader.load(
        write("r.jsonl", SEED_ROWS + '{"id":"product_12345","output":7}\n'), upsert_result
    )
    assert got["product_12345"] == (7, {}, None)  # called in file order: the last call wins
    assert got["product_67890"][1] == {}


def test_a_positional_only_row_function(write):
    seen = []

    def fn(a, b, c, d, /):
        seen.append((a, b, c, d))

    resultloader.load(write("r.jsonl", '{"id":"a","output":[1]}\n'), fn)
    assert seen == [("a", [1], {}, None)]


def test_a_function_declaring_extra_gets_the_rows_other_fields(write):
    seen = []

    def upsert_result(id, output, metadata, url, extra):
        seen.append((id, extra))

    def keyword(id, output, metadata, url, *, extra=None):
        seen.append((id, extra))

    text = '{"id":"a","output":1,"score":0.5,"tags":["x"]}\n{"id":"b","big":%d}\n{"id":"c"}\n'
    for fn in (upsert_result, keyword):
        resultloader.load(write("r.jsonl", text % BIG), fn)
    assert seen == 2 * [("a", {"score": 0.5, "tags": ["x"]}), ("b", {"big": BIG}), ("c", {})]


def test_a_function_sinks_summary_says_what_is_known(write):
    report = resultloader.load(write("r.jsonl", SEED_ROWS), lambda i, o, m, u: None)
    assert report.summary().startswith("2 rows read and passed to the sink, 0 null outputs")
    assert "?" not in report.summary()


def test_a_per_batch_function_gets_columnar_batches(write):
    batches: list[RowBatch] = []
    text = "id,output\n" + "".join(f'{i},"{{""n"":{i}}}"\n' for i in range(5))
    resultloader.load(write("r.csv", text), batches.append, options=LoadOptions(batch_rows=2))
    assert [b.ids for b in batches] == [["0", "1"], ["2", "3"], ["4"]]
    assert batches[0].outputs == ['{"n":0}', '{"n":1}']  # exact JSON text, not decoded values


def test_callables_are_told_apart_by_their_parameters():
    assert isinstance(sink_from_callable(lambda batch: None), BatchFunctionSink)
    assert type(sink_from_callable(lambda i, o, m, u: None)) is RowFunctionSink
    assert type(sink_from_callable(lambda i, o, m, u, extra=None: None)) is RowFunctionSink


@pytest.mark.parametrize(
    "fn", [lambda: None, lambda a, b: None, lambda a, b, c: None, lambda a, b, c, d, e: None]
)
def test_a_function_of_the_wrong_shape_is_refused_before_reading(write, fn):
    with pytest.raises(TypeError, match=r"one \(batch\) or four"):
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), fn)


def test_a_function_that_raises_aborts_the_load_and_calls_on_abort(write):
    events = []

    def fn(id, output, metadata, url):
        if id == "b":
            raise RuntimeError("store is down")

    sink = RowFunctionSink(
        fn, on_commit=lambda: events.append("commit"), on_abort=lambda: events.append("abort")
    )
    with pytest.raises(RuntimeError, match="store is down"):
        resultloader.load(write("r.jsonl", '{"id":"a"}\n{"id":"b"}\n'), sink)
    assert events == ["abort"]
    resultloader.load(write("ok.jsonl", '{"id":"a"}\n'), sink)
    assert events == ["abort", "commit"]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("r.jsonl", '{"id":"a"}\n\n{"id":"b","output":1}\n', "line 3"),
        ("r.csv", "id,output\na,1\nb,2\n", "line 3"),
        ("r.json", '[{"id":"a"},{"id":"b"}]', "item 2"),
    ],
)
def test_an_error_in_a_row_function_keeps_its_type_and_names_the_row(write, name, text, where):
    class StoreDown(Exception):
        pass

    def upsert_result(id, output, metadata, url):
        if id == "b":
            raise StoreDown("store is down")

    path = write(name, text)
    with pytest.raises(StoreDown, match="store is down") as info:  # still the user's own type
        resultloader.load(path, upsert_result)
    (note,) = info.value.__notes__
    assert "upsert_result" in note and "row 'b'" in note and f"{path}, {where}" in note


def test_an_error_in_a_batch_function_names_the_batchs_source_and_lines(write):
    def store(batch):
        raise KeyError("no such table")

    path = write("r.jsonl", '{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n')
    with pytest.raises(KeyError) as info:
        resultloader.load(path, store)
    (note,) = info.value.__notes__
    assert "store" in note and "3 rows" in note and f"{path}, lines 1 to 3" in note


@pytest.mark.parametrize("fn", [lambda i, o, m, u: None, lambda batch: None])
def test_quarantine_is_refused_for_functions_which_cannot_keep_rejects(write, fn):
    with pytest.raises(ResultLoaderError, match="cannot keep rejected rows"):
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), fn, on_error="quarantine")


def test_skip_works_with_a_function(write):
    ids = []
    report = resultloader.load(
        write("r.jsonl", '{"id":"a"}\nbad\n{"id":"b"}\n'),
        lambda id, output, metadata, url: ids.append(id),
        on_error="skip",
    )
    assert ids == ["a", "b"]
    assert report.bad_rows == 1


# -- a user's own Sink ---------------------------------------------------------------------------


class Recorder:
    """A user's sink: the protocol and nothing else."""

    def __init__(self, stores_rejects: bool = False) -> None:
        self.capabilities = SinkCapabilities(keeps_rejects=stores_rejects)
        self.events: list[Any] = []

    def begin(self, info: LoadInfo) -> None:
        self.events.append(("begin", info.source, info.options.key))

    def write(self, batch: RowBatch) -> None:
        self.events.append(("write", list(batch.ids), [r.line for r in batch.rejects]))

    def commit(self, report: LoadReport) -> CommitResult | None:
        self.events.append(("commit", report.rows_read, report.bad_rows))
        return CommitResult(upserted=42)

    def abort(self, error: str | None = None) -> None:
        self.events.append(("abort", error))


def test_a_custom_object_with_the_protocol_is_a_sink(write):
    sink = Recorder()
    assert isinstance(sink, Sink)
    report = resultloader.load(write("r.csv", "key,output\na,1\nb,2\n"), sink, key="key")
    assert sink.events[0][0] == "begin" and sink.events[0][2] == "key"
    assert ("write", ["a", "b"], []) in sink.events
    assert sink.events[-1] == ("commit", 2, 0)
    assert report.rows_upserted == 42  # what the sink says it did


def test_a_custom_sink_is_aborted_with_the_reason(write):
    sink = Recorder()
    with pytest.raises(ParseError):
        resultloader.load(write("r.jsonl", '{"id":"a"}\nnope\n'), sink)
    assert sink.events[-1][0] == "abort"
    assert "line 2" in sink.events[-1][1]
    assert not any(e[0] == "commit" for e in sink.events)


def test_quarantine_reaches_a_custom_sink_that_stores_rejects(write):
    refused = Recorder()
    with pytest.raises(ResultLoaderError, match="cannot keep rejected rows"):
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), refused, on_error="quarantine")
    assert refused.events == []  # refused before anything began
    keeper = Recorder(stores_rejects=True)
    resultloader.load(write("r.jsonl", '{"id":"a"}\nnope\n'), keeper, on_error="quarantine")
    assert ("write", ["a"], [2]) in keeper.events


# -- DuckDBSink: upserts, last one wins, one transaction -----------------------------------------


def table(db, sql="SELECT id, output FROM results ORDER BY id"):
    return query(db, sql)


DUPLICATES = {
    "jsonl": "".join(f'{{"id":"k{i % 2}","output":{i}}}\n' for i in range(7)),
    "json": "[" + ",".join(f'{{"id":"k{i % 2}","output":{i}}}' for i in range(7)) + "]",
    "csv": "id,output\n" + "".join(f"k{i % 2},{i}\n" for i in range(7)),
}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("batch_rows", [1, 2, 50_000])
def test_duckdb_last_duplicate_wins_within_and_across_batches(write, tmp_path, fmt, batch_rows):
    # INSERT OR REPLACE with both rows of a key in one statement would keep the first
    db = tmp_path / "r.duckdb"
    options = LoadOptions(batch_rows=batch_rows)
    report = resultloader.load(write(f"d.{fmt}", DUPLICATES[fmt]), db, options=options)
    assert table(db) == [("k0", "6"), ("k1", "5")]
    assert (report.rows_read, report.rows_upserted, report.duplicates) == (7, 2, 5)


def test_duckdb_last_wins_across_loads_and_a_reload_changes_nothing(write, tmp_path):
    db = tmp_path / "r.duckdb"
    first = write("a.jsonl", '{"id":"a","output":1}\n{"id":"b","output":1}\n')
    resultloader.load(first, db)
    resultloader.load(write("b.jsonl", '{"id":"b","output":2}\n'), db)
    assert table(db) == [("a", "1"), ("b", "2")]
    everything = "SELECT * FROM results ORDER BY id"
    before = table(db, everything)
    report = resultloader.load(write("b.jsonl", '{"id":"b","output":2}\n'), db)
    assert table(db, everything) == before  # _loaded_at too
    assert (report.rows_upserted, report.rows_unchanged) == (0, 1)


def test_duckdb_failed_load_commits_nothing_and_the_ledger_says_failed(write, tmp_path):
    db = tmp_path / "r.duckdb"
    resultloader.load(write("a.jsonl", '{"id":"a","output":1}\n'), db)
    bad = write("b.jsonl", '{"id":"a","output":2}\n{"id":"c","output":3}\n[1]\n')
    with pytest.raises(ParseError):
        resultloader.load(bad, db)
    assert table(db) == [("a", "1")]
    assert table(db, "SELECT status FROM _resultloader_loads ORDER BY started_at") == [
        ("committed",),
        ("failed",),
    ]


def test_duckdb_sink_on_an_open_connection(write):
    con = duckdb.connect()
    sink = resultloader.DuckDBSink(con, "mine")
    resultloader.load(write("r.jsonl", f'{{"id":"n","output":{BIG}}}\n'), sink)
    assert con.execute("SELECT output FROM mine").fetchall() == [(str(BIG),)]
    resultloader.load(write("r.jsonl", '{"id":"n","output":1}\n'), sink)
    assert con.execute("SELECT id, output FROM mine").fetchall() == [("n", "1")]


def _settings(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    names = ("threads", "memory_limit", "preserve_insertion_order", "TimeZone")
    sql = "SELECT name, value FROM duckdb_settings() WHERE name IN ?"
    return sorted(con.execute(sql, [list(names)]).fetchall())


def test_an_open_connection_is_a_sink_left_as_it_was(write, tmp_path):
    # docs/sinks.md promises "an open connection given as the sink is used with its own
    # settings, untouched": given bare, as a path would be, with table= as for a path
    con = duckdb.connect(str(tmp_path / "mine.duckdb"))
    con.execute("SET threads = 3; SET memory_limit = '321MB'; SET preserve_insertion_order = true")
    con.execute("CREATE TEMP TABLE scratch AS SELECT 42 AS answer")
    before = _settings(con)
    report = resultloader.load(write("r.jsonl", '{"id":"a","output":1}\n'), con, table="answers")
    assert report.rows_upserted == 1
    assert con.execute("SELECT id, output FROM answers").fetchall() == [("a", "1")]
    assert _settings(con) == before  # neither closed nor reconfigured
    assert con.execute("SELECT answer FROM scratch").fetchall() == [(42,)]
    resultloader.load(write("r.jsonl", '{"id":"b","output":2}\n'), con)  # default table
    assert con.execute("SELECT id FROM results").fetchall() == [("b",)]


def test_load_many_takes_an_open_connection(write):
    con = duckdb.connect()
    sources = [str(write(f"{n}.jsonl", f'{{"id":"{n}","output":1}}\n')) for n in "ab"]
    results = resultloader.load_many(sources, con, table="many")
    assert [r.outcome for r in results] == ["loaded", "loaded"]
    assert con.execute("SELECT id FROM many ORDER BY id").fetchall() == [("a",), ("b",)]
    again = resultloader.load_many(sources, con, table="many")  # its ledger: skipped
    assert [r.outcome for r in again] == ["skipped", "skipped"]


def test_duckdb_quarantine_stores_raw_line_number_and_reason(write, tmp_path):
    db = tmp_path / "r.duckdb"
    text = '{"id":"a"}\n{"bad json\n{"id":"b"}\n7\n'
    report = resultloader.load(write("q.jsonl", text), db, on_error="quarantine")
    assert report.bad_rows == 2
    rows = table(db, "SELECT line, byte_offset, raw, reason FROM results_rejects ORDER BY line")
    assert [r[:3] for r in rows] == [(2, 11, '{"bad json'), (4, text.index("7\n"), "7")]
    assert rows[0][3].startswith("invalid JSON")
    assert "object" in rows[1][3]
    assert table(db, "SELECT id FROM results ORDER BY id") == [("a",), ("b",)]


def test_duckdb_keeps_a_30_digit_integer_exactly_from_every_format(write, tmp_path):
    db = tmp_path / "r.duckdb"
    resultloader.load(write("a.jsonl", f'{{"id":"j","output":{BIG}}}\n'), db)
    resultloader.load(write("b.json", f'[{{"id":"d","output":{{"n":{BIG}}}}}]'), db)
    resultloader.load(write("c.csv", f"id,output\nc,{BIG}\n"), db)
    got = dict(table(db))
    assert got == {"j": str(BIG), "d": f'{{"n":{BIG}}}', "c": str(BIG)}
    assert int(got["j"]) == BIG


def test_a_refused_quarantine_does_not_leave_the_source_open(write):
    with write("r.jsonl", '{"id":"a"}\n').open("rb") as f:
        with pytest.raises(ResultLoaderError, match="cannot keep rejected rows"):
            resultloader.load(f, lambda i, o, m, u: None, on_error="quarantine")
        assert f.closed


def test_duckdb_ledger_records_each_load(write, tmp_path):
    db = tmp_path / "r.duckdb"
    text = '{"id":"a"}\n{"id":"a","output":1}\nbad\n{"id":"b"}\n'
    path = write("l.jsonl", text)
    report = resultloader.load(path, db, on_error="skip")
    resultloader.load(path, db, on_error="skip")
    rows = table(
        db,
        "SELECT target, source, status, rows_read, rows_upserted, rows_unchanged, duplicates,"
        " bad_rows, bytes, started_at <= finished_at FROM _resultloader_loads ORDER BY started_at",
    )
    assert rows == [
        ("results", report.source, "committed", 3, 2, 0, 1, 1, len(text), True),
        ("results", report.source, "committed", 3, 0, 2, 1, 1, len(text), True),
    ]

"""The sink contract: what every table sink guarantees (`resultloader.sinks`), as tests that run
against any sink a target names (`--into SCHEME:...`). Needs pytest.

A sink's author subclasses `SinkContract` in their own tests and gives it a `target` fixture,
a `ContractTarget` that reads back what the engine holds with the engine's own client; pytest
then runs every test below against their sink (fsspec ships its abstract tests the same way):

    class SqliteTarget(ContractTarget):
        def rows(self): ...                 # id -> the row as stored (see ContractTarget.rows)
        def has_rejects_table(self): ...

    class TestSqliteSink(SinkContract):
        @pytest.fixture
        def target(self, tmp_path):
            return SqliteTarget(f"sqlite:{tmp_path / 'r.db'}")

Loads go through the front doors, `resultloader.load(source, target.into, table=...)` and the
command line in a subprocess (with `target.env`); the ledger and rejects are read through the
sink's own `LedgerSink` methods, as `resultloader history` reads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import signal
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from .._errors import ParseError
from .._model import LoadReport
from ..pipeline.load import load as load_into
from ..pipeline.load_many import load_many
from ..sinks import LedgerSink
from ..sinks.registry import sink_for
from ._cli import cli, cli_load, killed_mid_load, write_rows

Row = dict[str, Any]


def decode(text: str | None) -> Any:
    """JSON text as values with exact numbers (Decimal, int), so that a sink keeping `1e400`
    as `1000...0` (PostgreSQL's NUMERIC) and one keeping the text agree."""
    return None if text is None else json.loads(text, parse_float=Decimal)


@dataclass
class ContractTarget:
    """Where the contract's loads go (`into`, as `--into` takes it, and `table`), and the
    environment a command line in a subprocess needs (a password, PYTHONPATH)."""

    into: str
    table: str = "results"
    env: dict[str, str] = field(default_factory=dict)

    def rows(self) -> dict[str, Row]:
        """The table as the engine holds it, read with the engine's own client: id -> a dict
        of `output`, `metadata`, `url`, `extra` (JSON decoded by `decode`), `_source` and
        `_loaded_at` (comparable values). No table yet: empty."""
        raise NotImplementedError

    def has_rejects_table(self) -> bool:
        """Whether the engine holds the table's rejects table (`<table>_rejects`) yet."""
        raise NotImplementedError

    def ledger_target(self) -> str:
        """How the ledger's `target` column names the table (a Delta ledger: its location)."""
        return self.table

    def sink(self) -> LedgerSink:
        return cast(LedgerSink, sink_for(self.into, self.table))

    def ledger(self) -> list[Row]:
        """This table's ledger rows, oldest first, read by the sink."""
        found = self.sink().ledger()
        rows = [] if found is None else found.to_pylist()
        mine = self.ledger_target()
        return sorted((r for r in rows if r["target"] == mine), key=lambda r: r["started_at"])

    def rejects(self) -> list[tuple[int, str, str]]:
        """(line, reason, raw) of the rejects its loads kept, by line, read by the sink."""
        sink = self.sink()
        found = [r for load in self.ledger() for r in sink.rejects(load)]
        return sorted((r["line"], r["reason"], r["raw"]) for r in found)

    def checksum(self) -> str:
        """The table's content (not `_loaded_at`), as one digest."""
        rows = sorted(
            (k, json.dumps({c: v[c] for c in ("output", "metadata", "url", "extra")}, default=str))
            for k, v in self.rows().items()
        )
        return hashlib.sha256(repr(rows).encode()).hexdigest()


def jsonl(*rows: str) -> str:
    return "".join(r + "\n" for r in rows)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def load(target: ContractTarget, source: Path, **kw: Any) -> LoadReport:
    return load_into(source, target.into, table=target.table, **kw)


NUMBERS = [
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "0.1000000000000000055511151231257827",
    "123456789012345.67",
    "3.14159265358979323846264338327950288",
    "1e400",
    "12345678901234567e2",
]
KILL_ROWS = 24_000


class SinkContract:
    """The tests every table sink passes; subclass with a `target` fixture (a ContractTarget)."""

    @pytest.fixture
    def target(self) -> ContractTarget:
        raise NotImplementedError("give your SinkContract subclass a `target` fixture")

    # -- last row wins, counts -----------------------------------------------------------------

    def test_the_last_row_of_an_id_wins_within_a_load_and_across_loads(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        rows = (f'{{"id":"k{i % 3}","output":{i}}}' for i in range(10))
        report = load(target, write(tmp_path, "1.jsonl", jsonl(*rows)))
        assert (report.rows_read, report.rows_upserted, report.duplicates) == (10, 3, 7)
        assert {k: v["output"] for k, v in target.rows().items()} == {"k0": 9, "k1": 7, "k2": 8}
        second = jsonl('{"id":"k1","output":"new"}', '{"id":"k3","output":null}')
        report = load(target, write(tmp_path, "2.jsonl", second))
        assert (report.rows_upserted, report.rows_unchanged, report.duplicates) == (2, 0, 0)
        got = {k: v["output"] for k, v in target.rows().items()}
        assert got == {"k0": 9, "k1": "new", "k2": 8, "k3": None}

    def test_the_same_rows_from_jsonl_json_and_csv_land_alike(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        load(
            target,
            write(tmp_path, "r.jsonl", jsonl('{"id":"a","output":1}', '{"id":"a","output":2}')),
        )
        load(target, write(tmp_path, "r.json", '[{"id":"b","output":1},{"id":"b","output":3}]'))
        load(target, write(tmp_path, "r.csv", "id,output\nc,1\nc,4\n"))
        rows = target.rows()
        assert {k: v["output"] for k, v in rows.items()} == {"a": 2, "b": 3, "c": 4}
        assert rows["a"]["metadata"] == {} and rows["a"]["extra"] is None

    # -- a re-run changes nothing --------------------------------------------------------------

    def test_a_rerun_changes_nothing_and_keeps_loaded_at(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        rows = (f'{{"id":"k{i}","output":{{"n":{i}}}}}' for i in range(50))
        source = write(tmp_path, "r.jsonl", jsonl(*rows))
        load(target, source)
        before = target.rows()
        report = load(target, source)
        assert (report.rows_upserted, report.rows_unchanged) == (0, 50)
        assert target.rows() == before  # _loaded_at included

    def test_only_changed_rows_are_replaced(self, target: ContractTarget, tmp_path: Path) -> None:
        before = [
            '{"id":"url","output":1,"url":""}',
            '{"id":"type","output":"1"}',
            '{"id":"swap","output":"a","url":"b"}',
            '{"id":"extra","output":1,"x":1}',
            '{"id":"meta","output":1,"metadata":{"m":1}}',
            '{"id":"same","output":1,"metadata":{}}',
        ]
        after = [
            '{"id":"url","output":1}',  # "" -> NULL
            '{"id":"type","output":1}',  # a string -> a number
            '{"id":"swap","output":"b","url":"a"}',  # two fields trade values
            '{"id":"extra","output":1,"y":1}',  # an extra field renamed
            '{"id":"meta","output":1,"metadata":{"m":2}}',
            '{"id":"same","output":1}',  # no metadata is stored as {}: unchanged
        ]
        load(target, write(tmp_path, "a.jsonl", jsonl(*before)))
        old = target.rows()
        time.sleep(0.01)  # so a rewritten row's _loaded_at differs
        report = load(target, write(tmp_path, "b.jsonl", jsonl(*after)))
        assert (report.rows_upserted, report.rows_unchanged) == (5, 1)
        new = target.rows()
        assert new["same"] == old["same"]
        assert new["url"]["url"] is None and new["type"]["output"] == 1
        assert (new["swap"]["output"], new["swap"]["url"]) == ("b", "a")
        assert new["extra"]["extra"] == {"y": 1} and new["meta"]["metadata"] == {"m": 2}
        assert all(new[k]["_loaded_at"] > old[k]["_loaded_at"] for k in new if k != "same")

    # -- exact numbers -------------------------------------------------------------------------

    def test_numbers_keep_their_exact_value(self, target: ContractTarget, tmp_path: Path) -> None:
        rows = [f'{{"id":"n{i}","output":{{"v":{v}}},"x":[{v}]}}' for i, v in enumerate(NUMBERS)]
        load(target, write(tmp_path, "n.jsonl", jsonl(*rows)))
        got = target.rows()
        for i, text in enumerate(NUMBERS):
            want = Decimal(text)
            assert Decimal(got[f"n{i}"]["output"]["v"]) == want, text
            assert Decimal(got[f"n{i}"]["extra"]["x"][0]) == want, text

    # -- one transaction -----------------------------------------------------------------------

    def test_a_failed_load_leaves_the_previous_state_and_a_failed_ledger_row(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        load(target, write(tmp_path, "a.jsonl", jsonl('{"id":"a","output":1}')))
        before = target.rows()
        many = [f'{{"id":"k{i}","output":{i}}}' for i in range(120_000)]  # several batches
        bad = write(tmp_path, "b.jsonl", jsonl('{"id":"a","output":2}', *many, "{broken"))
        with pytest.raises(ParseError):
            load(target, bad)
        assert target.rows() == before
        assert [r["status"] for r in target.ledger()] == ["committed", "failed"]

    # -- ledger --------------------------------------------------------------------------------

    def test_the_ledger_records_each_load_without_secrets_of_the_source(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        source = write(tmp_path, "r.jsonl", jsonl('{"id":"a"}', '{"id":"a"}', "oops", '{"id":"b"}'))
        load(target, source, on_error="skip")
        load(target, source, on_error="skip")
        ledger = target.ledger()
        assert [r["status"] for r in ledger] == ["committed", "committed"]
        assert [(r["rows_upserted"], r["rows_unchanged"]) for r in ledger] == [(2, 0), (0, 2)]
        assert {(r["rows_read"], r["duplicates"], r["bad_rows"]) for r in ledger} == {(3, 1, 1)}
        assert ledger[0]["source"] == str(source)
        assert {v["_source"] for v in target.rows().values()} == {str(source)}

    # -- quarantine ----------------------------------------------------------------------------

    def test_quarantined_rows_are_kept_with_line_reason_and_raw_text(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        text = jsonl('{"id":"a"}', '{"bad json', "7", '{"id":"b"}', '{"id":{"x":1}}')
        report = load(target, write(tmp_path, "q.jsonl", text), on_error="quarantine")
        assert report.bad_rows == 3
        assert sorted(target.rows()) == ["a", "b"]
        rejects = target.rejects()
        assert [(line, raw) for line, _, raw in rejects] == [
            (2, '{"bad json'),
            (3, "7"),
            (5, '{"id":{"x":1}}'),
        ]
        assert all(reason for _, reason, _ in rejects)
        load(target, write(tmp_path, "q.jsonl", text), on_error="quarantine")  # adds none
        assert target.rejects() == rejects

    def test_the_rejects_table_is_made_by_the_first_load_with_quarantine(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        source = write(tmp_path, "r.jsonl", jsonl('{"id":"a"}', "oops"))
        load(target, source, on_error="skip")
        load(target, source, on_error="skip")
        assert not target.has_rejects_table()  # no table a load would never fill
        clean = write(tmp_path, "c.jsonl", jsonl('{"id":"b"}'))
        load(target, clean, on_error="quarantine")  # no bad row, and yet: made
        assert target.has_rejects_table() and target.rejects() == []

    # -- names ---------------------------------------------------------------------------------

    @pytest.mark.parametrize("table", ["x; DROP TABLE y", "1abc", "_resultloader_loads", "a-b"])
    def test_bad_table_names_are_refused_before_anything_runs(
        self, target: ContractTarget, tmp_path: Path, table: str
    ) -> None:
        source = write(tmp_path, "r.jsonl", jsonl('{"id":"a"}'))
        with pytest.raises(ValueError, match="table"):
            load_into(source, target.into, table=table)
        assert target.ledger() == []

    # -- killed mid-load -----------------------------------------------------------------------

    def test_a_killed_loads_running_row_is_marked_abandoned_by_the_next_load(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        source = tmp_path / "r.jsonl"
        write_rows(source, range(KILL_ROWS), salt=1)
        data = source.read_bytes()
        proc = cli_load(target, None)
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # more than the read-ahead: it has begun
            proc.stdin.write(data[: len(data) * 8 // 10])
            proc.stdin.flush()
        time.sleep(0.3)  # stdin stays open: the load waits for the rest, so it cannot commit
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdin.close()
        assert [r["status"] for r in target.ledger()] == ["running"]
        assert cli_load(target, source).wait(timeout=120) == 0
        ledger = target.ledger()
        assert [r["status"] for r in ledger] == ["abandoned", "committed"]
        assert "killed" in ledger[0]["error"] and ledger[1]["error"] is None

    def test_sigkill_mid_load_leaves_the_previous_state_or_the_complete_load(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
        write_rows(old, range(KILL_ROWS), salt=1)
        # the second half of the ids change: loading `old` again restores the previous state
        write_rows(new, range(KILL_ROWS // 2, KILL_ROWS), salt=2)
        assert cli_load(target, old).wait(timeout=120) == 0
        previous = target.checksum()
        assert cli_load(target, new).wait(timeout=120) == 0
        complete = target.checksum()
        assert complete != previous
        rng = random.Random(14)
        for _ in range(3):
            assert cli_load(target, old).wait(timeout=120) == 0
            assert target.checksum() == previous
            killed_mid_load(target, new.read_bytes(), rng)
            assert target.checksum() in (previous, complete), "a partial load is visible"
        statuses = [r["status"] for r in target.ledger()]
        # the kills landed inside loads, whose rows say so (or a later load marked them)
        assert {"running", "abandoned"} & set(statuses)
        assert cli_load(target, new).wait(timeout=120) == 0  # the next run completes it
        assert target.checksum() == complete
        assert target.ledger()[-1]["status"] == "committed"

    # -- history -------------------------------------------------------------------------------

    def test_history_lists_the_targets_loads_and_one_loads_rejects(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        quarantined = write(tmp_path, "q.jsonl", jsonl('{"id":"a"}', "nope", '{"id":"b"}'))
        load(target, quarantined, on_error="quarantine")
        load(target, write(tmp_path, "r.jsonl", jsonl('{"id":"c"}')))
        done = cli(target, "history", "--into", target.into, "--json")
        assert done.returncode == 0, done.stderr
        loads = [json.loads(line) for line in done.stdout.splitlines()]
        # a database's ledger lists every table's loads: this test's are from its directory
        loads = [x for x in loads if x["source"].startswith(str(tmp_path))]
        assert [(x["source"].rsplit("/", 1)[-1], x["status"]) for x in loads] == [
            ("r.jsonl", "committed"),
            ("q.jsonl", "committed"),
        ]
        one = cli(target, "history", loads[1]["load_id"][:8], "--into", target.into, "--json")
        assert one.returncode == 0, one.stderr
        assert [(r["line"], r["raw"]) for r in json.loads(one.stdout)["rejects"]] == [(2, "nope")]

    def test_the_table_reads_back_the_columns_asked_that_it_has(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        assert target.sink().read_columns(["id"]) is None  # no table yet
        rows = write(tmp_path, "r.jsonl", jsonl('{"id":"a","url":"https://x/1"}', '{"id":"b"}'))
        load(target, rows)
        found = target.sink().read_columns(["id", "url", "not_a_column"])
        assert found is not None and found.column_names == ["id", "url"]
        pairs = sorted(zip(*found.to_pydict().values(), strict=True))
        assert pairs == [("a", "https://x/1"), ("b", None)]

    # -- re-runs skip what the ledger holds ----------------------------------------------------

    def test_a_rerun_of_many_sources_skips_the_committed_unchanged_ones(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        a = write(
            tmp_path, "a.jsonl", jsonl('{"id":"k1","output":"a"}', '{"id":"k2","output":"a"}')
        )
        b = write(tmp_path, "b.jsonl", jsonl('{"id":"k2","output":"b"}'))
        sources = [str(a), str(b)]

        def outcomes() -> list[str]:
            results = load_many(sources, target.into, table=target.table)
            return [r.outcome for r in results]

        assert outcomes() == ["loaded", "loaded"]
        assert outcomes() == ["skipped", "skipped"]
        committed = [r for r in target.ledger() if r["status"] == "committed"]
        assert len(committed) == 2  # the skipped sources left no ledger row
        b.write_text(jsonl('{"id":"k2","output":"b2"}', '{"id":"k3","output":"b2"}'))
        assert outcomes() == ["skipped", "loaded"]
        got = {k: v["output"] for k, v in target.rows().items()}
        assert got == {"k1": "a", "k2": "b2", "k3": "b2"}

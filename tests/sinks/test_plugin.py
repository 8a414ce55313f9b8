"""A third-party sink is one module and an entry point: SQLite
(tests/sinks/plugin_sink/rl_sqlite.py), installed into a site directory of its own as a wheel
would be. `--into sqlite:PATH`, `history --into sqlite:PATH` and `load(source, "sqlite:PATH")`
then work, and it passes the sink contract (resultloader.testing.SinkContract) as our own sinks
do."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import resultloader
from resultloader.sinks.registry import sink_for
from resultloader.testing import ContractTarget, SinkContract
from resultloader.testing.contract import decode

PLUGIN = Path(__file__).parent / "plugin_sink" / "rl_sqlite.py"


def install(site: Path, name: str, entry_points: str, module: Path | None = None) -> None:
    """A distribution in `site` as pip leaves one: its module, and its dist-info whose entry
    points importlib.metadata reads."""
    if module is not None:
        shutil.copy(module, site / module.name)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    install(site, "rl_sqlite", "[resultloader.sinks]\nsqlite = rl_sqlite\n", PLUGIN)
    return site


@pytest.fixture
def installed(site, monkeypatch) -> dict[str, str]:
    """The plug-in importable here (sys.path) and in a command line run (PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(site))
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resultloader", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


class SqliteTarget(ContractTarget):
    @property
    def path(self) -> str:
        return self.into.removeprefix("sqlite:")

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not os.path.exists(self.path):
            return []
        con = sqlite3.connect(self.path)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def rows(self) -> dict[str, dict[str, Any]]:
        if not self._query(f"SELECT 1 FROM sqlite_master WHERE name = '{self.table}'"):
            return {}
        found = self._query(f"SELECT * FROM {self.table}")
        return {
            r[0]: {
                "output": decode(r[1]),
                "metadata": decode(r[2]),
                "url": r[3],
                "extra": decode(r[4]),
                "_source": r[5],
                "_loaded_at": r[6],
            }
            for r in found
        }

    def has_rejects_table(self) -> bool:
        name = f"{self.table}_rejects"
        return bool(self._query(f"SELECT 1 FROM sqlite_master WHERE name = '{name}'"))


class TestSqlitePlugin(SinkContract):
    @pytest.fixture
    def target(self, installed, tmp_path) -> ContractTarget:
        return SqliteTarget(f"sqlite:{tmp_path / 'r.db'}", env=installed)


def test_the_plugins_scheme_names_its_sink_in_load_and_on_the_command_line(installed, tmp_path):
    source = tmp_path / "r.jsonl"
    source.write_text('{"id":"a","output":1}\n{"id":"b","output":2}\nbad\n')
    into = f"SQLITE:{tmp_path / 'r.db'}"  # schemes are case-insensitive
    assert type(sink_for(into)).__name__ == "SqliteSink"
    report = resultloader.load(source, into, on_error="skip")
    assert (report.rows_upserted, report.bad_rows) == (2, 1)
    done = cli(installed, "load", str(source), "--into", into, "--on-error", "quarantine", "-q")
    assert done.returncode == 0, done.stderr
    listed = cli(installed, "history", "--into", into, "--json")
    assert listed.returncode == 0, listed.stderr
    loads = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(x["status"], x["rows_upserted"], x["rows_unchanged"]) for x in loads] == [
        ("committed", 0, 2),
        ("committed", 2, 0),
    ]
    one = cli(installed, "history", loads[0]["load_id"], "--into", into)
    assert one.returncode == 0, one.stderr
    assert "rejects (1, in results_rejects):" in one.stdout and "line 3: " in one.stdout


def test_without_the_plugin_its_scheme_is_refused_naming_the_known_ones(tmp_path):
    for args in (["load", "-", "--into"], ["history", "--into"]):
        done = cli({}, *args, f"sqlite:{tmp_path / 'r.db'}")
        assert done.returncode == 1
        assert "unknown target" in done.stderr and "delta:PATH" in done.stderr
    assert not (tmp_path / "r.db").exists()
    assert not list(tmp_path.iterdir())  # no DuckDB file named `sqlite:...` either


def test_a_broken_plugin_is_named_and_the_others_still_work(site, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    install(broken, "rl_broken", "[resultloader.sinks]\nbroken = rl_missing\n")
    env = {"PYTHONPATH": os.pathsep.join([str(broken), str(site)])}
    done = cli(env, "history", "--into", f"nosuch:{tmp_path / 'x'}")
    assert done.returncode == 1 and "rl_missing" in done.stderr
    source = tmp_path / "r.jsonl"
    source.write_text('{"id":"a"}\n')
    done = cli(env, "load", str(source), "--into", f"sqlite:{tmp_path / 'r.db'}", "-q")
    assert done.returncode == 0, done.stderr

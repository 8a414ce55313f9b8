"""A third-party provider, installed through an entry point: in --help, loading, and named
when it is broken."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from resultloader.testing import FakeApi, Reply
from tests.support.provider_apis import (
    lines,
)

# -- a third-party provider, installed through an entry point --------------------------------

ACME = '''
from typing import ClassVar

from resultloader.providers import Download, Provider, RowMapping, register


@register
class Acme(Provider):
    """Acme's answer jobs."""

    name: ClassVar[str] = "acme-jobs"
    title: ClassVar[str] = "An Acme job: its rows, keyed by ref."
    base_url: ClassVar[str] = "https://api.acme.test"
    key_env: ClassVar[str] = "ACME_API_KEY"
    base_url_env: ClassVar[str] = "ACME_BASE_URL"
    auth_header: ClassVar[str] = "X-Acme-Key"
    status_field: ClassVar[str] = "state"
    states: ClassVar[dict] = {"working": "running", "done": "succeeded", "broken": "failed"}

    def job_path(self, job):
        return f"/jobs/{job.id}"

    def locate(self, payload, what, job_id, items_path):
        mapping = RowMapping(key="ref", output="answer", keep=("score",))
        return Download(f"/jobs/{job_id}/rows", format="jsonl", mapping=mapping)
'''


@pytest.fixture
def plugin(tmp_path):
    """A package with an entry point in `resultloader.providers`, importable from a dir on
    PYTHONPATH: importlib.metadata sees its dist-info as it would an installed wheel's."""
    site = tmp_path / "site"
    (site / "rl_acme").mkdir(parents=True)
    (site / "rl_acme" / "__init__.py").write_text(ACME)
    info = site / "rl_acme-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rl-acme\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resultloader.providers]\nacme-jobs = rl_acme:Acme\n")
    return site


def run_cli(site, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = "from resultloader.cli import main; main()"
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ, timeout=60
    )


def test_a_third_party_provider_shows_in_help_and_works(plugin, tmp_path):
    listed = run_cli(plugin, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" in listed.stdout
    assert "An Acme job: its rows, keyed by ref." in listed.stdout
    own = run_cli(plugin, "ingest", "acme-jobs", "--help")
    assert "$ACME_API_KEY" in own.stdout and "Acme's answer jobs." in own.stdout
    with FakeApi({"X-Acme-Key": "acme-secret"}) as fake:
        fake.script("/jobs/j1", {"state": "working"}, {"state": "done"})
        fake.script("/jobs/j1/rows", Reply(200, lines({"ref": "x", "answer": 42, "score": 0.5})))
        db = tmp_path / "r.duckdb"
        args = ["ingest", "acme-jobs", "--job-id", "j1", "--into", str(db), "--json"]
        done = run_cli(
            plugin,
            *args,
            "--poll-interval",
            "0.01",
            ACME_API_KEY="acme-secret",
            ACME_BASE_URL=fake.api_url,
        )
        assert done.returncode == 0, done.stderr
        assert fake.leaks == [] and "acme-secret" not in done.stdout + done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT id, output, extra FROM results").fetchall() == [
        ("x", "42", '{"score":0.5}')
    ]
    con.close()


def test_without_the_plugin_the_command_is_unknown(tmp_path):
    result = run_cli(tmp_path, "ingest", "acme-jobs", "--help")
    assert (result.returncode, result.stdout) == (2, "")  # a usage error, no help shown
    listed = run_cli(tmp_path, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" not in listed.stdout


def test_a_broken_plugin_is_named_and_the_others_still_work(plugin):
    info = plugin / "rl_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rl-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resultloader.providers]\nbroken = rl_missing:X\n")
    listed = run_cli(plugin, "ingest", "--help")
    assert listed.returncode == 0 and "acme-jobs" in listed.stdout
    assert "Installed but not loaded" in listed.stdout and "rl_missing" in listed.stdout

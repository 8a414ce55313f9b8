"""resultloader.airflow in a real Airflow (a metadata DB in a temp AIRFLOW_HOME, made here):
examples/airflow_dag.py run by `dag.test()`, its batch task deferring to IngestTrigger, which
runs and fires, and the task resuming on the worker to load the batch; against an OpenAI Batch
API on loopback (tests/support/orchestrated_batch.py), into DuckDB and a real PostgreSQL. Also the
trigger on an event loop of its own (never blocked, the provider's backoff, Retry-After), a
failed batch, the connections, and the key in no log, no XCom and no row of Airflow's database.

Airflow reads its configuration when first imported: nothing here imports it before the
`airflow_home` fixture has set the environment.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from resultloader import PollError
from resultloader.providers.openai import OpenAIBatch
from resultloader.testing import FakeApi, Reply
from tests.support.duckdb_files import query
from tests.support.orchestrated_batch import (
    BATCH,
    KEY,
    REASON,
    STATUSES,
    TOKENS,
    answer,
    files_text,
    ledger_ids,
    no_key_in,
    script_batch,
)
from tests.support.pg_server import PASSWORD
from tests.support.provider_apis import lines, oai_batch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)  # the run's logical date: {{ ds }}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A fresh AIRFLOW_HOME with its SQLite metadata DB migrated, and a DAGs folder holding the
    example DAG. Airflow keeps this configuration for the rest of the process."""
    assert "airflow" not in sys.modules, "Airflow was imported before its home was set"
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLES / "airflow_dag.py", dags)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_HOME", str(home))
        env.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
        env.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        env.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
        from airflow.utils import db

        db.initdb()
        yield home


@pytest.fixture
def api(airflow_home, monkeypatch):
    """The OpenAI Batch API on loopback, reached through the `openai_default` connection (the
    key is in no environment variable), polled every few hundredths of a second."""
    fake = FakeApi({"Authorization": f"Bearer {KEY}"})
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    connection = {"conn_type": "resultloader", "password": KEY, "host": fake.api_url + "/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
    monkeypatch.setattr(OpenAIBatch, "poll_floor", 0.02)
    monkeypatch.setattr(OpenAIBatch, "poll_cap", 0.05)
    yield fake
    fake.close()
    assert fake.leaks == []


@pytest.fixture
def example(airflow_home) -> ModuleType:
    """The example DAG's module, from the DAGs folder Airflow parses."""
    path = airflow_home / "dags" / "airflow_dag.py"
    spec = importlib.util.spec_from_file_location("resultloader_example_dag", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exports_of(root: Path) -> Path:
    """The day's exports: two OpenAI Batch result files."""
    day = root / "exports" / DAY.strftime("%Y-%m-%d")
    day.mkdir(parents=True)
    (day / "a.jsonl").write_bytes(lines(answer("e1", 11), answer("e2", 12)))
    (day / "b.jsonl").write_bytes(lines(answer("e3", 13)))
    return root / "exports"


def run(example: ModuleType, batch_id: str, exports: Path) -> Any:
    conf = {"batch_id": batch_id, "exports": str(exports)}
    return example.dag.test(logical_date=DAY, run_conf=conf)


def xcom(dag_run: Any, task_id: str) -> Any:
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def triggers() -> list[tuple[str, dict[str, Any]]]:
    """The deferrals Airflow recorded: each trigger's classpath and kwargs, as stored."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [(t.classpath, t.kwargs) for t in session.scalars(select(Trigger))]


def no_key_anywhere(home: Path, out: str, err: str) -> None:
    """Not in the output (every log line of dag.test goes there), not in Airflow's database or
    any file of its home."""
    no_key_in(out, err, files_text(home))


def test_the_example_dag_defers_on_the_batch_then_loads_it_and_the_days_files(
    airflow_home, api, example, tmp_path, monkeypatch, capfd
):
    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(db)})
    )
    script_batch(api, "in_progress", "in_progress", "completed")
    before = len(triggers())

    dag_run = run(example, "batch_abc", exports_of(tmp_path))

    assert dag_run.state == "success"
    # deferred: the trigger was recorded by its classpath, with the connection's id, no key
    classpath, kwargs = triggers()[before]
    assert classpath == "resultloader.airflow.triggers.IngestTrigger"
    assert (kwargs["provider"], kwargs["job_id"], kwargs["api_conn_id"]) == (
        "openai-batch",
        "batch_abc",
        "openai_default",
    )
    # running at first (deferred), running and completed in the trigger, completed on resuming
    assert api.hits(BATCH) == 4
    batch = xcom(dag_run, "batch_answers")
    assert (batch["rows_read"], batch["rows_upserted"], batch["bad_rows"]) == (4, 4, 0)
    assert (batch["status"], [batch["load_id"]]) == (
        "completed",
        ledger_ids(db, "openai-batch:batch_abc"),
    )
    assert (batch["statuses"], batch["tokens"]) == (STATUSES, TOKENS)  # the typed columns' tally
    files = xcom(dag_run, "exported_answers")
    assert (files["sources_loaded"], files["rows_read"], files["rows_upserted"]) == (2, 3, 3)
    assert (files["statuses"], files["tokens"]) == ({"succeeded": 3}, 11 + 12 + 13)
    day = tmp_path / "exports" / "2024-01-02"
    assert files["load_ids"] == [ledger_ids(db, str(day / n))[0] for n in ("a.jsonl", "b.jsonl")]
    found = query(db, "SELECT id, status, total_tokens FROM answers ORDER BY id")
    assert found == [("e1", "succeeded", 11), ("e2", "succeeded", 12), ("e3", "succeeded", 13),
                     ("q1", "succeeded", 10), ("q2", "succeeded", 20), ("q3", "errored", None),
                     ("q4", "expired", None)]  # fmt: skip
    out, err = capfd.readouterr()
    assert "4 rows read, 4 upserted" in out + err  # the task's log is in the output
    no_key_anywhere(airflow_home, out, err)


def test_the_example_dag_loads_into_postgres_from_a_postgres_connection(
    airflow_home, api, example, tmp_path, monkeypatch, postgres_url, capfd
):
    server = urlsplit(postgres_url)
    warehouse = {
        "conn_type": "postgres",
        "host": server.hostname,
        "port": server.port,
        "login": server.username,
        "password": PASSWORD,
        "schema": server.path.lstrip("/"),
    }
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(warehouse))
    script_batch(api, "in_progress", "completed")

    dag_run = run(example, "batch_abc", exports_of(tmp_path))

    assert dag_run.state == "success"
    batch = xcom(dag_run, "batch_answers")
    with psycopg.connect(postgres_url, password=PASSWORD) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM answers ORDER BY id")]
        sql = "SELECT load_id, status FROM _resultloader_loads WHERE source = %s"
        ledger = conn.execute(sql, ["openai-batch:batch_abc"]).fetchall()
    assert ids == ["e1", "e2", "e3", "q1", "q2", "q3", "q4"]
    assert (batch["rows_upserted"], ledger) == (4, [(batch["load_id"], "committed")])
    assert (batch["statuses"], batch["tokens"]) == (STATUSES, TOKENS)
    out, err = capfd.readouterr()
    no_key_anywhere(airflow_home, out, err)
    assert PASSWORD not in out + err  # the warehouse's password neither


def test_a_failed_batch_fails_its_task_with_the_providers_reason(
    airflow_home, api, example, tmp_path, monkeypatch, capfd
):
    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(db)})
    )
    script_batch(api, "completed")

    dag_run = run(example, "batch_bad", exports_of(tmp_path))

    assert dag_run.state == "failed"
    task = dag_run.get_task_instance("batch_answers")
    assert task.state == "failed" and task.xcom_pull(task_ids="batch_answers") is None
    assert dag_run.get_task_instance("exported_answers").state == "upstream_failed"
    out, err = capfd.readouterr()
    assert f"openai-batch batch batch_bad failed (status 'failed'): {REASON}" in out + err
    assert not db.exists()  # nothing was loaded
    no_key_anywhere(airflow_home, out, err)


def test_a_failed_batch_is_not_retried(airflow_home, api, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from resultloader.airflow import IngestOperator

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.api_url + "/v1")
    script_batch(api, "completed")
    db = str(tmp_path / "w.duckdb")
    task = IngestOperator(task_id="t", provider="openai-batch", job_id="batch_bad", into=db)
    with pytest.raises(AirflowFailException, match=REASON):  # fails the task, with no retry
        task.execute({})


def test_partial_loads_what_an_expired_batch_left(airflow_home, api, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from resultloader.airflow import IngestOperator

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.api_url + "/v1")
    script_batch(api, "completed")
    api.script(BATCH, oai_batch("expired", output_file_id="file-out"))
    db = str(tmp_path / "w.duckdb")
    whole = IngestOperator(task_id="t", provider="openai-batch", job_id="batch_abc", into=db)
    with pytest.raises(AirflowFailException, match="has expired"):
        whole.execute({})
    left = IngestOperator(
        task_id="t", provider="openai-batch", job_id="batch_abc", into=db, partial=True
    )
    found = left.execute({})
    assert (found["status"], found["rows_read"]) == ("expired (partial)", 3)
    assert [found["load_id"]] == ledger_ids(Path(db), "openai-batch:batch_abc")


# -- the trigger on its own ---------------------------------------------------------------------


def trigger_events(trigger: Any, tick: float = 0.01) -> tuple[list[dict[str, Any]], list[float]]:
    """The trigger's events, and when a ticker on the same event loop ran meanwhile."""
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(tick)

    async def main() -> list[dict[str, Any]]:
        ticking = asyncio.create_task(ticker())
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            ticking.cancel()

    return asyncio.run(main()), ticks


def slowly(reply: dict[str, Any], seconds: float):
    def answer() -> dict[str, Any]:
        time.sleep(seconds)  # on the server's thread: the API is slow to answer
        return reply

    return answer


@pytest.fixture
def env_key(airflow_home, api, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.api_url + "/v1")


def test_the_trigger_never_blocks_the_event_loop_and_waits_as_the_provider_says(api, env_key):
    from resultloader.airflow import IngestTrigger

    api.script(
        BATCH,
        slowly(oai_batch("in_progress"), 0.6),
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        oai_batch("in_progress"),
        slowly(oai_batch("completed", output_file_id="file-out"), 0.6),
    )
    trigger = IngestTrigger("openai-batch", "batch_abc", interval=0.2, max_interval=0.3)

    events, ticks = trigger_events(trigger)

    assert events == [{"state": "succeeded", "status": "completed", "checks": 3}]
    # the slow answers and the 1 s Retry-After were waited out off the event loop
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.3
    at = [seen.at for seen in api.api_seen if seen.path == BATCH]
    assert len(at) == 4 and at[2] - at[1] >= 1.0  # Retry-After: 1
    # between two checks, the provider's backoff from `interval` (after the answer came)
    assert at[1] - at[0] >= 0.6 + 0.2 and at[3] - at[2] >= 0.2


def test_the_trigger_fires_an_error_the_operator_raises(api, env_key, monkeypatch):
    from resultloader.airflow import IngestOperator, IngestTrigger

    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0000")
    events, _ = trigger_events(IngestTrigger("openai-batch", "batch_abc", interval=0.01))
    (event,) = events
    assert event["error"].startswith("openai-batch: the API key is wrong or missing (HTTP 401)")
    task = IngestOperator(task_id="t", provider="openai-batch", job_id="batch_abc", into="x.duckdb")
    with pytest.raises(PollError, match=r"HTTP 401"):
        task.execute_complete({}, event)


def test_the_trigger_gives_up_after_its_timeout(api, env_key):
    from resultloader.airflow import IngestTrigger

    api.script(BATCH, oai_batch("in_progress"))
    trigger = IngestTrigger("openai-batch", "batch_abc", interval=0.05, timeout=0.3)
    (event,), _ = trigger_events(trigger)
    assert "is still 'in_progress' after 0.3s" in event["error"]


def test_the_trigger_serialises_to_itself_without_secrets(airflow_home):
    from resultloader.airflow import IngestTrigger

    trigger = IngestTrigger(
        "openai-batch", "batch_abc", api_conn_id="openai_default", interval=5, timeout=60
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain values only


# -- connections and the provider ---------------------------------------------------------------


def test_a_postgres_connection_becomes_a_url_with_its_parts_quoted(airflow_home):
    from airflow.sdk import Connection

    from resultloader.airflow.hooks import target_of

    conn = Connection(
        conn_id="w",
        conn_type="postgres",
        host="db.internal",
        port=6432,
        login="etl@corp",
        password="p/w:d@#?",
        schema="ware house",
        extra=json.dumps({"sslmode": "require"}),
    )
    url = urlsplit(target_of(conn))
    assert (url.scheme, url.hostname, url.port, url.query) == (
        "postgresql",
        "db.internal",
        6432,
        "sslmode=require",
    )
    assert (unquote(url.username or ""), unquote(url.password or "")) == ("etl@corp", "p/w:d@#?")
    assert unquote(url.path) == "/ware house"
    duckdb = Connection(conn_id="d", conn_type="duckdb", host="/data/w.duckdb")
    assert target_of(duckdb) == "/data/w.duckdb"


def test_an_operator_takes_one_target(airflow_home):
    from resultloader.airflow import IngestOperator, LoadOperator

    for targets in ({}, {"into": "w.duckdb", "into_conn_id": "warehouse"}):
        with pytest.raises(ValueError, match="give one target"):
            IngestOperator(task_id="t", provider="openai-batch", job_id="b", **targets)
        with pytest.raises(ValueError, match="give one target"):
            LoadOperator(task_id="t", source="*.jsonl", **targets)


def test_the_package_is_an_airflow_provider_with_its_connection_type(airflow_home):
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from resultloader.airflow import ResultLoaderHook

    manager = ProvidersManagerTaskRuntime()
    assert "resultloader" in manager.providers
    hook = manager.hooks["resultloader"]
    assert (
        hook is not None and hook.hook_class_name == "resultloader.airflow.hooks.ResultLoaderHook"
    )
    assert ResultLoaderHook.get_ui_field_behaviour()["relabeling"]["password"] == "API key"

"""resultloader.dagster in a real Dagster: examples/dagster_definitions.py's assets materialized
(`dagster.materialize`) against an OpenAI Batch API on loopback (resultloader.testing.FakeApi),
into DuckDB: the table, the materialization's metadata, daily partitions, a failed batch, and
the key in no log. The batch is tests/support/orchestrated_batch.py's, as in
tests/airflow/test_airflow.py.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster
import pytest

from resultloader.providers.openai import OpenAIBatch
from resultloader.testing import FakeApi
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
from tests.support.provider_apis import lines

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def api(monkeypatch):
    """The OpenAI Batch API on loopback, its key and base URL in the environment, polled every
    few hundredths of a second (the provider's floor is 10 s)."""
    fake = FakeApi({"Authorization": f"Bearer {KEY}"})
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.api_url + "/v1")
    monkeypatch.setattr(OpenAIBatch, "poll_floor", 0.02)
    monkeypatch.setattr(OpenAIBatch, "poll_cap", 0.05)
    yield fake
    fake.close()
    assert fake.leaks == []


# -- Dagster ------------------------------------------------------------------------------------


@pytest.fixture
def definitions(api, tmp_path, monkeypatch) -> ModuleType:
    """examples/dagster_definitions.py, its warehouse and exports in tmp_path."""
    monkeypatch.setenv("WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("EXPORTS", str(tmp_path / "exports"))
    spec = importlib.util.spec_from_file_location(
        "dagster_definitions", EXAMPLES / "dagster_definitions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One Dagster instance (runs, event logs, compute logs) in a temp dir for the module."""
    root = tmp_path_factory.mktemp("dagster")
    with dagster.instance_for_test(temp_dir=str(root)) as found:
        yield found


def materialize(definitions: ModuleType, instance: Any, asset: Any, **kw: Any) -> Any:
    return dagster.materialize(
        [asset], resources=definitions.defs.resources, instance=instance, **kw
    )


def metadata_of(result: Any, asset: str) -> dict[str, Any]:
    (event,) = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in event.metadata.items()}


def logs_of(instance: Any, result: Any) -> str:
    return "\n".join(str(record) for record in instance.all_logs(result.run_id))


def test_a_batch_asset_loads_the_results_with_the_report_as_metadata(
    definitions, instance, api, tmp_path, capfd
):
    script_batch(api, "validating", "in_progress", "completed")
    run_config = {"ops": {"batch_answers": {"config": {"job_id": "batch_abc"}}}}
    result = materialize(definitions, instance, definitions.batch_answers, run_config=run_config)
    assert result.success
    db = tmp_path / "warehouse.duckdb"
    found = query(db, "SELECT id, status, total_tokens FROM answers ORDER BY id")
    assert found == [
        ("q1", "succeeded", 10),
        ("q2", "succeeded", 20),
        ("q3", "errored", None),
        ("q4", "expired", None),
    ]
    shown = metadata_of(result, "batch_answers")
    assert (shown["rows_read"], shown["rows_upserted"], shown["bad_rows"]) == (4, 4, 0)
    assert (shown["provider"], shown["job_id"], shown["status"]) == (
        "openai-batch",
        "batch_abc",
        "completed",
    )
    assert [shown["load_id"]] == ledger_ids(db, "openai-batch:batch_abc")
    assert (shown["statuses"], shown["tokens"]) == (STATUSES, TOKENS)  # the typed columns' tally
    assert api.hits(BATCH) == 3  # waited through two running statuses
    out, err = capfd.readouterr()
    logs, files = logs_of(instance, result), files_text(Path(instance.root_directory))
    assert "4 rows read, 4 upserted" in logs and "4 rows read, 4 upserted" in files
    no_key_in(out, err, logs, files)


def test_daily_partitions_load_each_days_files(definitions, instance, tmp_path):
    exports = tmp_path / "exports"
    for day, names in (("2024-01-01", ["a"]), ("2024-01-02", ["a", "b"])):
        (exports / day).mkdir(parents=True)
        for name in names:
            rows = [answer(f"{day}-{name}-{n}", 10 + n) for n in range(3)]
            (exports / day / f"{name}.jsonl").write_bytes(lines(*rows))
    asset, db = definitions.exported_answers, tmp_path / "warehouse.duckdb"

    second = metadata_of(
        materialize(definitions, instance, asset, partition_key="2024-01-02"), "exported_answers"
    )
    assert query(db, "SELECT count(*), min(id) FROM answers") == [(6, "2024-01-02-a-0")]
    assert (second["sources_loaded"], second["sources_skipped"], second["rows_read"]) == (2, 0, 6)
    day2 = [str(exports / "2024-01-02" / f"{n}.jsonl") for n in "ab"]
    assert second["load_ids"] == [ledger_ids(db, path)[0] for path in day2]
    assert [load["source"] for load in second["loads"]] == day2

    first = metadata_of(
        materialize(definitions, instance, asset, partition_key="2024-01-01"), "exported_answers"
    )
    assert (first["sources_loaded"], first["rows_upserted"]) == (1, 3)
    assert query(db, "SELECT count(*) FROM answers WHERE status = 'succeeded'") == [(9,)]
    assert (first["statuses"], first["tokens"]) == ({"succeeded": 3}, 10 + 11 + 12)

    again = metadata_of(
        materialize(definitions, instance, asset, partition_key="2024-01-02"), "exported_answers"
    )
    assert (again["sources_loaded"], again["sources_skipped"], again["load_ids"]) == (0, 2, [])
    assert "rows_read" not in again  # nothing was read


def test_a_failed_batch_fails_the_materialization_with_the_providers_reason(
    definitions, instance, api, tmp_path
):
    script_batch(api, "in_progress")
    run_config = {"ops": {"batch_answers": {"config": {"job_id": "batch_bad"}}}}
    result = materialize(
        definitions,
        instance,
        definitions.batch_answers,
        run_config=run_config,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    said = failure.step_failure_data.user_failure_data.description
    assert said == f"openai-batch batch batch_bad failed (status 'failed'): {REASON}"
    assert result.asset_materializations_for_node("batch_answers") == []
    assert not (tmp_path / "warehouse.duckdb").exists() or query(
        tmp_path / "warehouse.duckdb",
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'answers'",
    ) == [(0,)]
    no_key_in(logs_of(instance, result))


def test_a_partitioned_load_asset_needs_the_partition_in_its_source():
    from resultloader.dagster import load_asset

    daily = dagster.DailyPartitionsDefinition(start_date="2024-01-01")
    with pytest.raises(ValueError, match=r"\{partition\}"):
        load_asset("exports/*.jsonl", name="exports", partitions_def=daily)


def test_metadata_shows_numbers_text_and_json_and_leaves_out_the_unknown():
    from resultloader.dagster import metadata

    shown = metadata({"rows_read": 3, "seconds": 0.5, "status": "completed", "statuses": {"a": 1},
                      "tokens": None, "load_ids": ["x"]})  # fmt: skip
    kinds = {
        "rows_read": dagster.IntMetadataValue,
        "seconds": dagster.FloatMetadataValue,
        "status": dagster.TextMetadataValue,
        "statuses": dagster.JsonMetadataValue,
        "load_ids": dagster.JsonMetadataValue,
    }
    assert shown.keys() == kinds.keys()  # tokens, None, is left out
    assert all(isinstance(shown[name], kind) for name, kind in kinds.items())
    assert json.dumps(shown["statuses"].value) == '{"a": 1}'


def test_the_resource_shows_no_key():
    from resultloader.dagster import ResultLoaderResource

    resource = ResultLoaderResource(into="w.duckdb", api_key=KEY)
    assert "w.duckdb" in repr(resource) and "w.duckdb" in str(resource)
    no_key_in(repr(resource), str(resource))

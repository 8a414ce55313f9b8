"""An Airflow DAG: an OpenAI Batch's results loaded when it ends, then the day's exported files.

The batch is waited for in the triggerer (the task is deferred: no worker slot is held for the
hours a batch takes), then loaded on a worker. Connections (Admin -> Connections, or
AIRFLOW_CONN_OPENAI_DEFAULT / AIRFLOW_CONN_WAREHOUSE as JSON):

- `openai_default`: the API key as its password (its host: a base URL other than OpenAI's);
- `warehouse`: a Postgres connection, or one whose host is a DuckDB file path.

Trigger it with `{"batch_id": "batch_...", "exports": "/data/exports"}`; each task's XCom is the
load's report (rows, bad rows, rows by status, tokens, the load's id in the ledger).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from resultloader.airflow import IngestOperator, LoadOperator

with DAG(
    dag_id="resultloader_example",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "batch_id": Param("", type="string", description="The OpenAI batch (batch_...)."),
        "exports": Param("/data/exports", type="string", description="Daily exports: DAY/*.jsonl"),
    },
) as dag:
    batch = IngestOperator(
        task_id="batch_answers",
        provider="openai-batch",
        job_id="{{ params.batch_id }}",
        api_conn_id="openai_default",
        into_conn_id="warehouse",
        table="answers",
    )
    exports = LoadOperator(
        task_id="exported_answers",
        source="{{ params.exports }}/{{ ds }}/*.jsonl",
        provider="openai-batch",  # the files are OpenAI Batch result files (load --as)
        into_conn_id="warehouse",
        table="answers",
    )
    batch >> exports  # one writer at a time: a DuckDB file takes one

"""Dagster definitions: an OpenAI Batch's results as an asset, and daily exported files as a
daily-partitioned asset (a backfill of a date range loads each day's files).

`dagster dev -f examples/dagster_definitions.py`, with OPENAI_API_KEY (OPENAI_BASE_URL for
another endpoint), WAREHOUSE (a DuckDB file path, or postgresql://...) and EXPORTS (the folder of
daily exports, DAY/*.jsonl) in the environment. Materialize `batch_answers` with the run config
`ops: {batch_answers: {config: {job_id: batch_...}}}`. Each materialization carries the load's
report as metadata (rows upserted, unchanged and bad, rows by status, tokens, load id).
"""

from __future__ import annotations

import os

from dagster import DailyPartitionsDefinition, Definitions, EnvVar

from resultloader.dagster import ResultLoaderResource, ingest_asset, load_asset

EXPORTS = os.environ.get("EXPORTS", "exports")

batch_answers = ingest_asset("openai-batch", name="batch_answers", group_name="answers")
exported_answers = load_asset(
    os.path.join(EXPORTS, "{partition}", "*.jsonl"),
    name="exported_answers",
    provider="openai-batch",  # the files are OpenAI Batch result files (load --as)
    partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"),
    group_name="answers",
)

defs = Definitions(
    assets=[batch_answers, exported_answers],
    resources={
        "resultloader": ResultLoaderResource(
            into=EnvVar("WAREHOUSE"), table="answers", api_key=EnvVar("OPENAI_API_KEY")
        )
    },
)

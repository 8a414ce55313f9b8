"""What Airflow's providers manager reads through the `apache_airflow_provider` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "resultloader",
        "name": "resultloader",
        "description": "Wait for async API jobs (OpenAI, Anthropic, Gemini batches and more) in "
        "the triggerer, then load their results into DuckDB, Postgres or Delta.",
        "integrations": [
            {"integration-name": "resultloader", "external-doc-url": _DOCS, "tags": ["software"]}
        ],
        "operators": [_modules("operators")],
        "triggers": [_modules("triggers")],
        "hooks": [_modules("hooks")],
        "connection-types": [
            {
                "connection-type": "resultloader",
                "hook-class-name": "resultloader.airflow.hooks.ResultLoaderHook",
                "hook-name": "resultloader (an async job API)",
            }
        ],
    }


def _modules(kind: str) -> dict[str, Any]:
    return {"integration-name": "resultloader", "python-modules": [f"resultloader.airflow.{kind}"]}


_DOCS = "https://pypi.org/project/resultloader/"

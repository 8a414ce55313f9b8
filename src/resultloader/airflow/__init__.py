"""resultloader in Apache Airflow (`pip install 'resultloader[airflow]'`).

>>> from resultloader.airflow import IngestOperator, LoadOperator
>>> IngestOperator(task_id="batch", provider="openai-batch", job_id="{{ params.batch_id }}",
...                api_conn_id="openai_default", into_conn_id="warehouse", table="answers")

`IngestOperator` defers to `IngestTrigger` while the job runs, then loads its results on a
worker; `LoadOperator` loads files. Both push the load's report to XCom. The package is an
Airflow provider (entry point `apache_airflow_provider`): its `resultloader` connection type
holds an API's key and base URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hooks import ResultLoaderHook
    from .operators import IngestOperator, LoadOperator
    from .triggers import IngestTrigger

__all__ = ["IngestOperator", "IngestTrigger", "LoadOperator", "ResultLoaderHook"]

_HOMES = {
    "IngestOperator": "operators",
    "LoadOperator": "operators",
    "IngestTrigger": "triggers",
    "ResultLoaderHook": "hooks",
}


def __getattr__(name: str) -> Any:
    """The classes are imported when first named: Airflow reads the provider's description
    (provider_info) while it starts, before operators can be imported."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

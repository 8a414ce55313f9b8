"""Airflow connections: a provider's API (its key and base URL) and a load's target.

An API connection keeps the key in its password and the base URL, if not the provider's own,
in its host: the fields the `openai_default` connection of Airflow's OpenAI provider uses, so
that one works as it is. A target connection is a Postgres connection (host, port, login,
password, database; its extras, such as `sslmode`, as URL parameters), or any connection whose
host is a target as `into=` takes it (a DuckDB file path, `delta:PATH`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseHook, Connection

from ..providers._client import ApiAccess


class ResultLoaderHook(BaseHook):
    """The `resultloader` connection type: a provider API's key and base URL."""

    conn_name_attr = "api_conn_id"
    default_conn_name = "resultloader_default"
    conn_type = "resultloader"
    hook_name = "resultloader (an async job API)"

    def __init__(self, api_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.api_conn_id = api_conn_id

    def get_conn(self) -> ApiAccess:
        return api_access(self.get_connection(self.api_conn_id))

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {"host": "empty: the provider's own (e.g. https://api.openai.com/v1)"},
        }


def api_access(conn: Connection) -> ApiAccess:
    """The key (the password) and the base URL (the host, when set) of an API connection."""
    return ApiAccess(key=conn.password or None, base_url=conn.host or None)


def target_of(conn: Connection) -> str:
    """The target a connection names: a Postgres URL, or its host as a target."""
    if conn.conn_type in ("postgres", "postgresql"):
        return _postgres_url(conn)
    if conn.host:
        return str(conn.host)
    raise ValueError(
        f"connection {conn.conn_id!r}: give a Postgres connection, or one whose host is a "
        "target (a DuckDB file path, delta:PATH)"
    )


def _postgres_url(conn: Connection) -> str:
    user = quote(conn.login or "", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    at = f"{user}{password}@" if user else ""
    port = f":{conn.port}" if conn.port else ""
    database = quote(conn.schema or "", safe="")
    params = {k: str(v) for k, v in conn.extra_dejson.items() if isinstance(v, (str, int))}
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{at}{conn.host or ''}{port}/{database}{query}"

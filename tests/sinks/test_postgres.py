"""What is particular to PostgresSink: its table's types, the password kept out of sight, two
loads at once, the CLI's `--into postgresql://`. Against a real server
(tests/support/pg_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import resultloader
from resultloader import SinkError
from tests.support.pg_server import PASSWORD

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, password=PASSWORD) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_the_table_has_the_documented_columns(postgres_url, table, write, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    resultloader.load(
        write("r.jsonl", '{"id":"a"}\n'), resultloader.PostgresSink(postgres_url, table)
    )
    columns = query(
        postgres_url,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        f" WHERE table_name = '{table}' ORDER BY ordinal_position",
    )
    assert columns == [
        ("id", "text", "NO"),
        ("output", "jsonb", "YES"),
        ("metadata", "jsonb", "NO"),
        ("url", "text", "YES"),
        ("extra", "jsonb", "YES"),
        ("_source", "text", "YES"),
        ("_loaded_at", "timestamp with time zone", "YES"),
    ]
    (key,) = query(
        postgres_url,
        f"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        f" AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{table}'::regclass AND i.indisprimary",
    )
    assert key == ("id",)


def test_the_password_in_the_url_is_never_shown(postgres_url, table, write, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = with_password(postgres_url, PASSWORD)
    sink = resultloader.PostgresSink(url, table)
    assert PASSWORD not in repr(sink)
    resultloader.load(write("r.jsonl", '{"id":"a"}\n'), sink)
    stored = query(postgres_url, f"SELECT * FROM {table}") + query(
        postgres_url, "SELECT * FROM _resultloader_loads"
    )
    assert PASSWORD not in json.dumps(stored, default=str)
    wrong = resultloader.PostgresSink(with_password(postgres_url, "wrong-" + PASSWORD), table)
    with pytest.raises(SinkError, match="cannot connect") as caught:
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), wrong)
    assert "wrong-" not in str(caught.value) and PASSWORD not in str(caught.value)


def test_the_password_from_pgpassword_and_a_cli_error_without_it(postgres_url, table, write):
    source = write("r.jsonl", '{"id":"a","output":1}\n')
    args = [*CLI, "load", str(source), "--into", postgres_url, "--table", table, "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    done = subprocess.run(args, env={**env, "PGPASSWORD": PASSWORD}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_upserted"] == 1
    bad = subprocess.run(
        args, env={**env, "PGPASSWORD": "x" + PASSWORD}, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert PASSWORD not in bad.stderr and "Traceback" not in bad.stderr


def test_two_loads_into_one_table_at_once_both_commit(postgres_url, table, write, monkeypatch):
    """The second waits for the first (an advisory lock) rather than deadlocking on ids."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    rows = "".join(f'{{"id":"k{i}","output":{i}}}\n' for i in range(30_000))
    sources = [write("a.jsonl", rows), write("b.jsonl", rows)]
    errors: list[BaseException] = []

    def run(source: object) -> None:
        try:
            resultloader.load(source, postgres_url, table=table)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert query(postgres_url, f"SELECT count(*) FROM {table}") == [(30_000,)]
    first, second = query(
        postgres_url,
        "SELECT status, started_at, finished_at FROM _resultloader_loads"
        f" WHERE target = '{table}' ORDER BY started_at",
    )
    assert first[0] == second[0] == "committed"
    assert first[2] <= second[1]  # the second began once the first had finished


def test_a_table_name_too_long_for_its_rejects_table_is_refused(postgres_url):
    with pytest.raises(ValueError, match="at most 55"):
        resultloader.PostgresSink(postgres_url, "t" * 56)
    assert resultloader.PostgresSink(postgres_url, "t" * 55).table == "t" * 55


def test_an_unreachable_server_is_a_one_line_sink_error(write):
    sink = resultloader.PostgresSink(f"postgresql://u:{PASSWORD}@127.0.0.1:1/db")
    with pytest.raises(SinkError, match="cannot connect") as caught:
        resultloader.load(write("r.jsonl", '{"id":"a"}\n'), sink)
    assert PASSWORD not in str(caught.value)


def test_a_nul_character_jsonb_cannot_hold_fails_the_load_whole(
    postgres_url, table, write, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    first = write("a.jsonl", '{"id":"a","output":1}\n')
    resultloader.load(first, resultloader.PostgresSink(postgres_url, table))
    bad = write("b.jsonl", '{"id":"a","output":2}\n{"id":"b","output":"x\\u0000y"}\n')
    with pytest.raises(SinkError, match="the load could not be committed: ") as caught:
        resultloader.load(bad, resultloader.PostgresSink(postgres_url, table))
    assert "\n" not in str(caught.value)
    assert query(postgres_url, f"SELECT id, output::text FROM {table}") == [("a", "1")]
    statuses = query(
        postgres_url,
        f"SELECT status FROM _resultloader_loads WHERE target = '{table}' ORDER BY started_at",
    )
    assert statuses == [("committed",), ("failed",)]

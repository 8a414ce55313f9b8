"""The commands run.py measures besides the CLI, each run as its own process.

python children.py reference FILE DB [THREADS]   DuckDB's own reader: the bar to meet
python children.py interpreter _ _     Python with resultloader and DuckDB imported: the base RSS
python children.py naive FILE DB       the seed's loop: json.loads and one upsert a line
python children.py serve DIR PORT      a loopback HTTP server for the HTTP scenario
"""

from __future__ import annotations

import functools
import json
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

_TABLE = """CREATE TABLE results (id VARCHAR PRIMARY KEY, output JSON, metadata JSON,
    url VARCHAR, extra JSON, _source VARCHAR, _loaded_at TIMESTAMP)"""


def reference(path: str, db: str, threads: str = "") -> None:
    """DuckDB's INSERT OR REPLACE from read_json, deduped first: with two rows of one key in
    one statement DuckDB keeps the first, so a window keeps the last line of each id. With
    THREADS, DuckDB runs that many (as on a server with that many cores)."""
    con = duckdb.connect(db)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(_TABLE)
    con.execute(
        """INSERT OR REPLACE INTO results
        SELECT id, output, coalesce(metadata, '{}'), url, NULL, $path, now() FROM (
            SELECT *, row_number() OVER () AS line FROM read_json($path,
                format = 'newline_delimited',
                columns = {id: 'VARCHAR', output: 'JSON', metadata: 'JSON', url: 'VARCHAR'}))
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY line DESC) = 1""",
        {"path": path},
    )
    con.close()


def naive(path: str, db: str) -> None:
    """The seed's parse_result_jsonl with a plain DuckDB upsert_result: what users start from."""
    con = duckdb.connect(db)
    con.execute(_TABLE)

    def upsert_result(id: str, output: object, metadata: object, url: str) -> None:
        con.execute(
            "INSERT OR REPLACE INTO results (id, output, metadata, url) VALUES (?, ?, ?, ?)",
            [id, json.dumps(output), json.dumps(metadata), url],
        )

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            upsert_result(row["id"], row.get("output"), row.get("metadata", {}), row["url"])
    con.close()


def interpreter(_path: str, _db: str) -> None:
    import resultloader  # noqa: F401

    duckdb.connect().execute("SELECT 1").fetchall()


def distinct(path: str, _db: str) -> None:
    sql = "SELECT count(DISTINCT json->>'id') FROM read_ndjson_objects(?)"
    print(duckdb.connect().execute(sql, [path]).fetchone()[0])  # type: ignore[index]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def copyfile(self, source: Any, outputfile: Any) -> None:
        """With sendfile, as nginx and object stores send files: the server shares the two
        cores with the load it serves, and a copy loop in Python would be its cost, not ours."""
        self.connection.sendfile(source)


def serve(directory: str, port: str) -> None:
    """Files with Content-Length, as object stores serve them."""
    handler = functools.partial(_Quiet, directory=directory)
    ThreadingHTTPServer(("127.0.0.1", int(port)), handler).serve_forever()


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    roles = {
        "reference": reference,
        "naive": naive,
        "serve": serve,
        "distinct": distinct,
        "interpreter": interpreter,
    }
    roles[role](*rest)

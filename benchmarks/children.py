"""The commands run.py measures besides the CLI, each run as its own process.

python children.py reference FILE DB [THREADS]   DuckDB's own reader: the bar to meet
python children.py reference-openai FILE DB      the same for OpenAI Batch lines (rest in extra)
python children.py reference-typed FILE DB       ... as openai-batch rows with typed columns
python children.py reference-csv FILE DB         DuckDB's CSV reader, the same table
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


def _upsert(con: duckdb.DuckDBPyConnection, select: str, path: str) -> None:
    """INSERT OR REPLACE of `select` (its rows numbered by `line`), the last line of an id
    winning, as `reference` does."""
    con.execute(
        f"""INSERT OR REPLACE INTO results BY NAME SELECT * EXCLUDE (line) FROM ({select})
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY line DESC) = 1""",
        {"path": path},
    )


def reference_openai(path: str, db: str) -> None:
    """A plain load of OpenAI Batch lines: keyed by `id`, the other fields kept in `extra`."""
    con = duckdb.connect(db)
    con.execute(_TABLE)
    _upsert(
        con,
        """SELECT id, NULL AS output, '{}' AS metadata, NULL AS url,
            json_object('custom_id', custom_id, 'response', response, 'error', error) AS extra,
            $path AS _source, now() AS _loaded_at, row_number() OVER () AS line
        FROM read_json($path, format = 'newline_delimited', columns = {id: 'VARCHAR',
            custom_id: 'VARCHAR', response: 'JSON', error: 'JSON'})""",
        path,
    )
    con.close()


# The openai-batch provider's typed columns, by hand: ->> and casts
_TYPED = """CREATE TABLE results (id VARCHAR PRIMARY KEY, output JSON, metadata JSON,
    url VARCHAR, extra JSON, _source VARCHAR, _loaded_at TIMESTAMP, status VARCHAR,
    model VARCHAR, text VARCHAR, finish_reason VARCHAR, input_tokens BIGINT,
    output_tokens BIGINT, total_tokens BIGINT, error_type VARCHAR, error_message VARCHAR)"""


def reference_typed(path: str, db: str) -> None:
    con = duckdb.connect(db)
    con.execute(_TYPED)
    _upsert(
        con,
        """SELECT * EXCLUDE (error), CASE WHEN output IS NOT NULL THEN 'succeeded'
                WHEN error->>'code' = 'batch_expired' THEN 'expired' ELSE 'errored' END AS status,
            output->>'model' AS model, output->>'$.choices[0].message.content' AS text,
            output->>'$.choices[0].finish_reason' AS finish_reason,
            (output->>'$.usage.prompt_tokens')::BIGINT AS input_tokens,
            (output->>'$.usage.completion_tokens')::BIGINT AS output_tokens,
            (output->>'$.usage.total_tokens')::BIGINT AS total_tokens,
            coalesce(extra->>'$.response.body.error.type', error->>'code') AS error_type,
            coalesce(extra->>'$.response.body.error.message', error->>'message')
                AS error_message
        FROM (SELECT custom_id AS id, CASE WHEN ok THEN response->'body' END AS output,
                '{}' AS metadata, NULL AS url, json_object('id', rid, 'response',
                json_object('status_code', response->'status_code', 'request_id',
                    response->'request_id', 'body', CASE WHEN NOT ok THEN response->'body' END),
                'error', error) AS extra, error, $path AS _source, now() AS _loaded_at, line
            FROM (SELECT *, id AS rid, row_number() OVER () AS line,
                    coalesce((response->>'status_code')::INT BETWEEN 200 AND 299, false) AS ok
                FROM read_json($path, format = 'newline_delimited', columns = {id: 'VARCHAR',
                    custom_id: 'VARCHAR', response: 'JSON', error: 'JSON'})))""",
        path,
    )
    con.close()


def reference_csv(path: str, db: str) -> None:
    """A CSV batch download: output and metadata cells are JSON text, other columns in extra."""
    con = duckdb.connect(db)
    con.execute(_TABLE)
    _upsert(
        con,
        """SELECT id, output::JSON AS output, coalesce(metadata, '{}')::JSON AS metadata, url,
            json_object('reviewer', reviewer, 'decision', decision) AS extra,
            $path AS _source, now() AS _loaded_at, row_number() OVER () AS line
        FROM read_csv($path, header = true, all_varchar = true)""",
        path,
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


def distinct(path: str, _db: str, key: str = "id") -> None:
    sql = "SELECT count(DISTINCT json->>$key) FROM read_ndjson_objects($path)"
    if path.endswith(".csv"):  # the key column: $key unused
        sql = f'SELECT count(DISTINCT "{key}") FROM read_csv($path, all_varchar = true)'
        print(duckdb.connect().execute(sql, {"path": path}).fetchone()[0])  # type: ignore[index]
        return
    print(duckdb.connect().execute(sql, {"key": key, "path": path}).fetchone()[0])  # type: ignore[index]


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
        "reference-openai": reference_openai,
        "reference-typed": reference_typed,
        "reference-csv": reference_csv,
        "naive": naive,
        "serve": serve,
        "distinct": distinct,
        "interpreter": interpreter,
    }
    roles[role](*rest)

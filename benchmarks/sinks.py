"""The Postgres and Delta sinks against what a careful engineer would write by hand, same run.

    python benchmarks/sinks.py               # 1M rows, median of 3
    python benchmarks/sinks.py --rows 100000 --rounds 1    # a smoke test, not a measurement

For each sink: a fresh load and a re-load of the same file through `resultloader load`, and a
reference from the same file:
- Postgres: the raw lines COPY'd into a staging table, then one INSERT ... SELECT DISTINCT ON
  ... ON CONFLICT (id) DO UPDATE, the server parsing the JSON (a throwaway server on loopback,
  tests/pg_server.py);
- Delta: DuckDB's JSON reader deduping into an Arrow table, then write_deltalake (fresh) or one
  merge (re-load).
Every command runs as a child process, timed by wall clock, its peak RSS from os.wait4.
Targets: a fresh load within 1.2x its reference, a re-load within 1.2x a fresh load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from generate import generate  # noqa: E402

CLI = [sys.executable, "-c", "from resultloader._cli import main; main()"]

PG_REFERENCE = """
import sys, psycopg
url, path, table = sys.argv[1:4]
with psycopg.connect(url) as conn:
    conn.execute(f'''CREATE TABLE {table} (id TEXT PRIMARY KEY, output JSONB,
        metadata JSONB NOT NULL, url TEXT, extra JSONB, _source TEXT, _loaded_at TIMESTAMPTZ)''')
    conn.execute("CREATE TEMP TABLE stage (n BIGSERIAL, line TEXT) ON COMMIT DROP")
    with conn.cursor().copy("COPY stage (line) FROM STDIN (FORMAT csv, QUOTE e'\\\\x01', "
                            "DELIMITER e'\\\\x02')") as copy, open(path, 'rb') as f:
        while block := f.read(1 << 20):
            copy.write(block)
    conn.execute(f'''INSERT INTO {table} AS t
        SELECT DISTINCT ON (j->>'id') j->>'id', j->'output', coalesce(j->'metadata', '{{}}'),
            j->>'url', nullif(j - 'id' - 'output' - 'metadata' - 'url', '{{}}'), %s, now()
        FROM (SELECT n, line::jsonb AS j FROM stage) s ORDER BY j->>'id', n DESC
        ON CONFLICT (id) DO UPDATE SET output = EXCLUDED.output, metadata = EXCLUDED.metadata,
            url = EXCLUDED.url, extra = EXCLUDED.extra, _loaded_at = EXCLUDED._loaded_at
        WHERE (t.output, t.metadata, t.url, t.extra) IS DISTINCT FROM
            (EXCLUDED.output, EXCLUDED.metadata, EXCLUDED.url, EXCLUDED.extra)''', [path])
"""

DELTA_REFERENCE = """
import sys, duckdb
from deltalake import DeltaTable, write_deltalake
path, lake, mode = sys.argv[1:4]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.sql('''SELECT id, output::VARCHAR AS output,
        coalesce(metadata, '{}')::VARCHAR AS metadata, url, NULL::VARCHAR AS extra,
        $path AS _source, now() AS _loaded_at
    FROM (SELECT *, row_number() OVER () AS line FROM read_json($path,
        format = 'newline_delimited',
        columns = {id: 'VARCHAR', output: 'JSON', metadata: 'JSON', url: 'VARCHAR'}))
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY line DESC) = 1''',
    params={"path": path}).to_arrow_table()
if mode == "fresh":
    write_deltalake(lake, rows)
else:
    changed = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in ("output", "metadata", "url"))
    (DeltaTable(lake).merge(rows, "t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all(predicate=changed).when_not_matched_insert_all().execute())
"""


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args[:6])}...: {err.decode()[-2000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def postgres_round(url: str, path: Path, env: dict[str, str], n: int) -> dict[str, tuple]:
    import psycopg

    tables = {"ours": f"bench_ours_{n}", "reference": f"bench_ref_{n}"}
    with psycopg.connect(url, autocommit=True, password=env["PGPASSWORD"]) as conn:
        for t in tables.values():
            conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_rejects")  # type: ignore[arg-type]
    into = [*CLI, "load", str(path), "--into", url, "--table", tables["ours"], "-q"]
    return {
        "postgres reference": measure(
            [sys.executable, "-c", PG_REFERENCE, url, str(path), tables["reference"]], env
        ),
        "postgres fresh": measure(into, env),
        "postgres re-load": measure(into, env),
    }


def delta_round(work: Path, path: Path, env: dict[str, str]) -> dict[str, tuple]:
    ours, ref = work / "ours", work / "ref"
    for p in (ours, ref):
        shutil.rmtree(p, ignore_errors=True)
    into = [*CLI, "load", str(path), "--into", f"delta:{ours}", "-q"]
    reference = [sys.executable, "-c", DELTA_REFERENCE, str(path), str(ref)]
    return {
        "delta reference": measure([*reference, "fresh"], env),
        "delta reference merge": measure([*reference, "merge"], env),
        "delta fresh": measure(into, env),
        "delta re-load": measure(into, env),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tests.pg_server import PASSWORD, postgres_server

    path = generate(args.rows, gzip_too=False, json_too=False)["jsonl"]
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    results: dict[str, list[tuple[float, float]]] = {}
    with postgres_server() as url, tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):  # interleaved: a noisy neighbour slows all alike
            found = {
                **postgres_round(url, path, env, args.rows),
                **delta_round(Path(work), path, env),
            }
            for name, m in found.items():
                results.setdefault(name, []).append(m)
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    print(f"{args.rows:,} rows, median of {args.rounds}")
    for name, runs in results.items():
        rss = max(r for _, r in runs)
        print(f"  {name:24} {wall[name]:7.2f} s   peak RSS {rss:6.0f} MB")
    for sink in ("postgres", "delta"):
        fresh = wall[f"{sink} fresh"] / wall[f"{sink} reference"]
        reload = wall[f"{sink} re-load"] / wall[f"{sink} fresh"]
        print(
            f"  {sink}: fresh / reference {fresh:.2f}x (target 1.2x), "
            f"re-load / fresh {reload:.2f}x (target 1.2x)"
        )
    merge = wall["delta re-load"] / wall["delta reference merge"]
    print(f"  delta: re-load / reference merge {merge:.2f}x")


if __name__ == "__main__":
    main()

"""The Postgres, Delta and Iceberg sinks against what a careful engineer would write by hand.

    python benchmarks/sinks.py               # 1M rows, median of 3
    python benchmarks/sinks.py --sink delta --rounds 1     # one sink, one round
    python benchmarks/sinks.py --rows 100000 --rounds 1    # a smoke test, not a measurement

For each sink: a fresh load and a re-load of the same file through `resultloader load`, and a
reference from the same file:
- Postgres: the raw lines COPY'd into a staging table, then one INSERT ... SELECT DISTINCT ON
  ... ON CONFLICT (id) DO UPDATE, the server parsing the JSON (a throwaway server on loopback,
  tests/support/pg_server.py);
- Delta: DuckDB's JSON functions building the sink's table (every field, `extra` too, as exact
  text), deduped into an Arrow table, then write_deltalake (fresh) or one merge of the whole file
  with a tenth of its rows changed; the sink re-loads that file too, and both tables must hold
  the same rows;
- Iceberg: pyiceberg's own `Table.upsert` of the same rows (fresh, then the file with a tenth
  changed), and the Delta sink's loads of the same files (iceberg_bench.py says how). Targets:
  at least 10x faster than Table.upsert, at most 1.3x the Delta sink.
Every command runs as a child process, timed by wall clock, its peak RSS from os.wait4.
Targets: a fresh load within 1.2x its reference, a re-load within 1.2x a fresh load, peak RSS
within the memory budget (`--budget-mb`, 512 by default, resultloader's default `--memory`), which
is what a load may use beyond Python itself: the interpreter's own RSS with the sink's modules
and DuckDB loaded is measured in the same run and counted apart.
"""

from __future__ import annotations

import argparse
import contextlib
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
from iceberg_bench import iceberg_round  # noqa: E402
from iceberg_bench import report as iceberg_report  # noqa: E402

CLI = [sys.executable, "-c", "from resultloader.cli import main; main()"]
# the interpreter a load starts from: resultloader's CLI, the sink's modules, DuckDB connected
INTERPRETER = """import duckdb, resultloader.cli, resultloader.sinks.{sink}
duckdb.connect().execute("SELECT 1").fetchall()"""

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

# The same table as the sink's: every field (`extra` too) as its JSON text, integers exact (the
# generated rows hold no long decimals), the metadata default, the last row of an id winning.
DELTA_REFERENCE = """
import sys, duckdb
from deltalake import DeltaTable, write_deltalake
path, lake, mode = sys.argv[1:4]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.sql('''SELECT v[1]->>'$' AS id, CASE WHEN v[2] <> 'null' THEN v[2] END AS output,
        coalesce(CASE WHEN v[3] <> 'null' THEN v[3] END, '{}') AS metadata, v[4]->>'$' AS url,
        CASE WHEN len(k) > (v[1] IS NOT NULL)::INT + (v[2] IS NOT NULL)::INT
                + (v[3] IS NOT NULL)::INT + (v[4] IS NOT NULL)::INT
            THEN json_merge_patch(raw, '{"id":null,"output":null,"metadata":null,"url":null}')
            END::VARCHAR AS extra,
        $path AS _source, now() AS _loaded_at
    FROM (SELECT json AS raw, json_keys(json) AS k,
            json_extract(json, ['$.id', '$.output', '$.metadata', '$.url']) AS v,
            row_number() OVER () AS line
        FROM read_json_objects($path, format = 'newline_delimited'))
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY line DESC) = 1''',
    params={"path": path}).to_arrow_table()
if mode == "fresh":
    write_deltalake(lake, rows)
else:
    fields = ("output", "metadata", "url", "extra")
    changed = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in fields)
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


def changed_copy(path: Path, every: int = 10) -> Path:
    """The file with every `every`-th line's url changed: a re-load that merges a tenth."""
    out = path.with_name(f"{path.stem}-changed{every}.jsonl")
    if not out.exists():
        with open(path, "rb") as src, open(out, "wb") as dst:
            for n, line in enumerate(src):
                dst.write(
                    line.replace(b'"url":"https://', b'"url":"http://') if n % every == 0 else line
                )
    return out


def delta_content(lake: Path) -> tuple[int, int]:
    """(rows, an order-free digest of every row's fields): equal tables, equal pairs."""
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(str(lake)).file_uris()
    ((rows, digest),) = duckdb.sql(
        "SELECT count(*), bit_xor(hash(id, output, metadata, url, extra))"
        f" FROM read_parquet({files!r})"
    ).fetchall()
    return rows, digest


def delta_round(work: Path, path: Path, changed: Path, env: dict[str, str]) -> dict[str, tuple]:
    ours, ref = work / "ours", work / "ref"
    for p in (ours, ref):
        shutil.rmtree(p, ignore_errors=True)
    into = ["--into", f"delta:{ours}", "-q"]
    reference = [sys.executable, "-c", DELTA_REFERENCE]
    found = {
        "delta reference": measure([*reference, str(path), str(ref), "fresh"], env),
        "delta fresh": measure([*CLI, "load", str(path), *into], env),
    }
    if delta_content(ours) != delta_content(ref):
        raise SystemExit("the Delta reference's table differs from the sink's")
    found["delta re-load"] = measure([*CLI, "load", str(path), *into], env)
    found["delta reference merge"] = measure([*reference, str(changed), str(ref), "merge"], env)
    found["delta re-load 10% changed"] = measure([*CLI, "load", str(changed), *into], env)
    if delta_content(ours) != delta_content(ref):
        raise SystemExit("the Delta reference's merged table differs from the sink's")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sink", choices=("postgres", "delta", "iceberg"), action="append")
    parser.add_argument(
        "--upsert-rows", type=int, default=100_000, help="rows of the Table.upsert reference"
    )
    parser.add_argument("--budget-mb", type=float, default=512, help="peak RSS target")
    args = parser.parse_args()
    sinks = args.sink or ["postgres", "delta", "iceberg"]
    if "iceberg" in sinks and "delta" not in sinks:
        sinks.append("delta")  # the Iceberg sink's target is relative to the Delta sink's
    upsert_rows = min(args.upsert_rows, args.rows)
    from tests.support.pg_server import PASSWORD, postgres_server

    path = generate(args.rows, gzip_too=False, json_too=False)["jsonl"]
    changed = changed_copy(path)
    fewer = generate(upsert_rows, gzip_too=False, json_too=False)["jsonl"]
    upsert_files = (fewer, changed_copy(fewer))
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    results: dict[str, list[tuple[float, float]]] = {}
    # the interpreter's RSS, counted apart from the budget: measured first, while this process
    # is small (a child's peak RSS counts its parent's at the fork)
    for sink in sinks:
        code = INTERPRETER.format(sink="iceberg.sink" if sink == "iceberg" else sink)
        results[f"{sink} interpreter"] = [measure([sys.executable, "-c", code], env)]
    server = postgres_server() if "postgres" in sinks else contextlib.nullcontext("")
    with server as url, tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):  # interleaved: a noisy neighbour slows all alike
            found = {}
            if "postgres" in sinks:
                found.update(postgres_round(url, path, env, args.rows))
            if "delta" in sinks:
                found.update(delta_round(Path(work), path, changed, env))
            if "iceberg" in sinks:
                found.update(iceberg_round(Path(work), (path, changed), upsert_files, env, measure))
            for name, m in found.items():
                results.setdefault(name, []).append(m)
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    rss = {k: max(r for _, r in v) for k, v in results.items()}
    print(f"{args.rows:,} rows, median of {args.rounds}")
    for name in results:
        print(f"  {name:26} {wall[name]:7.2f} s   peak RSS {rss[name]:6.0f} MB")
    for sink in sinks:
        if sink == "iceberg":
            iceberg_report(wall, args.rows, upsert_rows)
        else:
            fresh = wall[f"{sink} fresh"] / wall[f"{sink} reference"]
            print(f"  {sink}: fresh / reference {fresh:.2f}x (target 1.2x)")
        reload = wall[f"{sink} re-load"] / wall[f"{sink} fresh"]
        print(f"  {sink}: re-load / fresh {reload:.2f}x (target 1.2x)")
        interpreter = rss[f"{sink} interpreter"]
        ours = max(
            v
            for k, v in rss.items()
            if k.startswith(sink)
            and not any(word in k for word in ("reference", "upsert", "interpreter"))
        )
        verdict = "ok" if ours - interpreter <= args.budget_mb else "over"
        print(
            f"  {sink}: peak RSS {ours:.0f} MB, {ours - interpreter:.0f} MB beyond the "
            f"interpreter's {interpreter:.0f} MB (target {args.budget_mb:.0f} MB) {verdict}"
        )
    if "delta" in sinks:
        changed_reload = wall["delta re-load 10% changed"]
        print(
            f"  delta: re-load of 10% changed / fresh {changed_reload / wall['delta fresh']:.2f}x"
            " (no target: the re-load target is for unchanged rows; this one also rewrites the"
            f" files holding the changed tenth), / reference merge "
            f"{changed_reload / wall['delta reference merge']:.2f}x"
        )


if __name__ == "__main__":
    main()

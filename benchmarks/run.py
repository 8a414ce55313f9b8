"""The load benchmark: resultloader against DuckDB's own JSON reader and the seed's naive loop.

    python benchmarks/run.py                 # 1M rows (4M for the memory check), median of 3
    python benchmarks/run.py --quick         # 100k rows, one run: a smoke test, not a measurement
    python benchmarks/run.py --only fresh,reference --repeat 5    # tuning: no target table

Every measured command runs as a child process, one at a time, and is timed by wall clock; its
peak RSS comes from the kernel's rusage for that child (os.wait4). Scenarios are interleaved in
each round, so a noisy neighbour slows all of them alike, and the ratios compare medians. The
scenarios without a time target (the naive loop, the {"data": [...]} document, the sweep of
--memory and --threads, the 4M-row memory check, whose target is its peak RSS) run in the first
round only, to keep a full run near 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import DATA, generate  # noqa: E402

from resultloader._memory import DEFAULT_MEMORY, parse_size  # noqa: E402

WORK = DATA / "work"
BUDGET_MB = DEFAULT_MEMORY // 2**20  # resultloader's default --memory


@dataclass
class Scenario:
    name: str
    rows: int
    walls: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss(self) -> float:
        return statistics.median(self.rss_mb)


def _spawn_wait(args: list[str]) -> tuple[float, float, float, str, str, int]:
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return (
        time.perf_counter() - started,
        usage.ru_maxrss / 1024,
        usage.ru_utime + usage.ru_stime,
        out.decode(),
        err.decode(errors="replace"),
        child.returncode,
    )


def measure(
    scenario: Scenario, args: list[str], expect: dict[str, int] | None = None
) -> dict[str, int]:
    wall, rss, cpu, out, err, code = _spawn_wait(args)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(args)}\n{err}")
    report = json.loads(out) if out.strip().startswith("{") else {}
    if expect:
        wrong = {k: (report.get(k), v) for k, v in expect.items() if report.get(k) != v}
        if wrong:
            raise SystemExit(f"{scenario.name}: unexpected counts (got, want): {wrong}")
    scenario.walls.append(wall)
    scenario.rss_mb.append(rss)
    print(f"  {scenario.name:46} {wall:6.2f} s {rss:5.0f} MB  (CPU {cpu:5.2f} s)", flush=True)
    return report


def fresh_db(db: Path) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.tmp", ignore_errors=True)
    return db


def resultloader_cmd(source: str, db: Path, *flags: str) -> list[str]:
    exe = Path(sys.executable).with_name("resultloader")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "resultloader"]
    # --json: the report on stdout, and no progress bar (as with -q)
    return [*cli, "load", source, "--into", str(db), "--json", *flags]


def child_cmd(role: str, source: Path, db: Path, *more: str) -> list[str]:
    return [sys.executable, str(HERE / "children.py"), role, str(source), str(db), *more]


# (memory, threads) of the sweep; threads "" is the default, which follows from the memory
SWEEP = [("256MB", "1"), ("256MB", ""), ("256MB", "8"), ("512MB", ""), ("1GB", ""), ("1GB", "32")]
# no time target (the memory check's is its peak RSS, the same each round): first round only
ONCE = {"naive", "envelope", "memory", "python"}


class HttpServer:
    """The data directory over HTTP on loopback, in its own process (as a real server is)."""

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "children.py"), "serve", str(DATA), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the loopback HTTP server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


def distinct_ids(path: Path) -> int:
    """Counted in a child: a child's peak RSS includes its parent's at the fork, so this
    process stays small."""
    out = subprocess.run(child_cmd("distinct", path, Path()), capture_output=True, check=True)
    return int(out.stdout)


def sample(path: Path, rows: int) -> Path:
    out = path.with_name(f"{path.stem}-head{rows}.jsonl")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            for _, line in zip(range(rows), src, strict=False):
                dst.write(line)
    return out


def main() -> None:
    args = parse_args()
    files = generate(args.rows)
    big = generate(args.memory_rows, gzip_too=False, json_too=False)["jsonl"]
    naive_file = sample(files["jsonl"], args.naive_rows)
    n, distinct = args.rows, distinct_ids(files["jsonl"])
    big_distinct = distinct_ids(big)
    fresh_expect = {"rows_read": n, "rows_upserted": distinct, "bad_rows": 0}
    s = {
        "fresh": Scenario("resultloader load FILE.jsonl (fresh table)", n),
        "reference": Scenario("reference: DuckDB read_json, INSERT OR REPLACE", n),
        "reload": Scenario("resultloader re-load into the populated table", n),
        "http": Scenario("resultloader load http://127.0.0.1/FILE.jsonl", n),
        "gzip": Scenario("resultloader load FILE.jsonl.gz", n),
        "json": Scenario("resultloader load FILE.json (top-level array)", n),
        "many": Scenario("resultloader load FILE.jsonl --threads 16", n),
        "reference16": Scenario("reference, DuckDB at 16 threads", n),
        "memory": Scenario("resultloader load FILE.jsonl (memory check)", args.memory_rows),
        "envelope": Scenario('resultloader load FILE.json ({"data": [...]})', n),
        "naive": Scenario("naive loop: json.loads + 1 upsert a row", args.naive_rows),
        "python": Scenario("interpreter: Python, resultloader, DuckDB", 0),
    }
    for memory, threads in SWEEP:
        name = f"sweep: --memory {memory} --threads {threads or 'default'}"
        s[f"sweep {memory} {threads}"] = Scenario(name, n)
    print(header(args, files["jsonl"]))
    only = set(filter(None, args.only.split(",")))
    with HttpServer() as base:
        url = f"{base}/{files['jsonl'].name}"
        big_expect = {"rows_read": args.memory_rows, "rows_upserted": big_distinct}
        reload_expect = {"rows_read": n, "rows_upserted": 0, "rows_unchanged": distinct}
        rl, child, jsonl = resultloader_cmd, child_cmd, str(files["jsonl"])
        db = {k: WORK / f"{k.replace(' ', '-')}.duckdb" for k in s}
        db["reload"] = db["fresh"]  # the re-load goes into the table the fresh load filled
        steps = [  # (scenario, command, expected report)
            ("fresh", rl(jsonl, db["fresh"]), fresh_expect),
            ("reload", rl(jsonl, db["reload"]), reload_expect),
            ("reference", child("reference", files["jsonl"], db["reference"]), None),
            ("http", rl(url, db["http"]), fresh_expect),
            ("gzip", rl(str(files["gzip"]), db["gzip"]), fresh_expect),
            ("json", rl(str(files["json"]), db["json"]), fresh_expect),
            ("many", rl(jsonl, db["many"], "--threads", "16"), fresh_expect),
            ("reference16", child("reference", files["jsonl"], db["reference16"], "16"), None),
            ("memory", rl(str(big), db["memory"]), big_expect),
            ("envelope", rl(str(files["envelope"]), db["envelope"]), fresh_expect),
            ("naive", child("naive", naive_file, db["naive"]), None),
            ("python", child("interpreter", Path(), Path()), None),
        ]
        for memory, threads in SWEEP:
            flags = ["--memory", memory] + (["--threads", threads] if threads else [])
            key = f"sweep {memory} {threads}"
            steps.append((key, rl(jsonl, db[key], *flags), fresh_expect))
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_}/{args.repeat}", flush=True)
            for key, cmd, expect in steps:
                once = key in ONCE or key.startswith("sweep")
                if (only and key not in only) or (once and round_ > 1):
                    continue
                if key != "reload":
                    fresh_db(db[key])
                measure(s[key], cmd, expect)
    shutil.rmtree(WORK, ignore_errors=True)
    if only:
        return
    ok = report(s, n)
    if args.quick:
        print("\nA --quick run is a smoke test on 100k rows: it is not held to the targets.")
    sys.exit(0 if ok or args.quick else 1)


def header(args: argparse.Namespace, path: Path) -> str:
    mib = path.stat().st_size / 2**20
    return (
        f"resultloader benchmark: {args.rows:,} rows ({mib:,.1f} MiB JSONL), "
        f"memory check {args.memory_rows:,} rows, naive sample {args.naive_rows:,} rows, "
        f"median of {args.repeat}\n"
        f"Python {platform.python_version()}, DuckDB {version('duckdb')}, "
        f"orjson {version('orjson')}, pyarrow {version('pyarrow')}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
        + ("\nQUICK RUN: a smoke test, not held to the targets" if args.quick else "")
    )


def report(s: dict[str, Scenario], n: int) -> bool:
    print()
    head = ("scenario", "rows", "wall s", "rows/s", "peak RSS MB")
    print("| {:46} | {:>9} | {:>7} | {:>9} | {:>11} |".format(*head))
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 9}|{'-' * 11}|{'-' * 13}|")
    for sc in s.values():
        if not sc.walls or not sc.rows:
            continue
        rate = sc.rows / sc.wall
        cells = (sc.name, sc.rows, sc.wall, rate, sc.rss)
        print("| {:46} | {:>9,} | {:7.2f} | {:>9,.0f} | {:>11.0f} |".format(*cells))
    fresh = s["fresh"]
    naive_total = s["naive"].wall / s["naive"].rows * n  # extrapolated to the full file
    print(f"\nnaive loop extrapolated to {n:,} rows: {naive_total:,.0f} s")
    envelope = s["envelope"].wall / fresh.wall
    print(f'{{"data": [...]}} document (ijson, no target) / JSONL: {envelope:.2f}')
    interpreter = s["python"].rss
    bound = 1.3 * BUDGET_MB + interpreter
    print(
        f"interpreter with resultloader and DuckDB imported: {interpreter:.0f} MB; "
        f"peak RSS bound: 1.3 x {BUDGET_MB} MB (the default --memory) + {interpreter:.0f} MB"
        f" = {bound:.0f} MB"
    )
    print(f"16 threads / default threads (time): {s['many'].wall / fresh.wall:.2f}")
    growth = s["memory"].rss / fresh.rss
    sweep = [
        sc.rss / (1.3 * parse_size(memory) / 2**20 + interpreter)
        for (memory, threads) in SWEEP
        if (sc := s[f"sweep {memory} {threads}"]).rss_mb
    ]
    print(f"peak RSS, 4x the rows / fresh load (no target; the budget bounds both): {growth:.2f}")
    checks = [
        ("resultloader / reference (time)", fresh.wall / s["reference"].wall, "<=", 1.0),
        ("re-load / fresh load (time)", s["reload"].wall / fresh.wall, "<=", 1.2),
        ("HTTP loopback / local file (time)", s["http"].wall / fresh.wall, "<=", 1.1),
        ("gzip / plain (time)", s["gzip"].wall / fresh.wall, "<=", 1.3),
        ("JSON document (top-level array) / JSONL", s["json"].wall / fresh.wall, "<=", 2.0),
        ("peak RSS, fresh load (MB)", fresh.rss, "<=", round(bound)),
        ("peak RSS, 16 threads (MB)", s["many"].rss, "<=", round(bound)),
        ("peak RSS, memory check: 4x the rows (MB)", s["memory"].rss, "<=", round(bound)),
        ("sweep: peak RSS / its budget's bound (worst)", max(sweep, default=0.0), "<=", 1.0),
        ("naive / resultloader (time)", naive_total / fresh.wall, ">=", 300.0),
    ]
    print(f"\n| {'target':44} | {'measured':>9} | {'target':>9} | {'':4} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|{'-' * 6}|")
    ok = True
    for name, value, op, limit in checks:
        good = value <= limit if op == "<=" else value >= limit
        ok &= good
        shown = f"{value:9.2f}" if value < 1000 else f"{value:9,.0f}"
        print(f"| {name:44} | {shown} | {op} {limit:>6g} | {'ok' if good else 'MISS':4} |")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=4_000_000)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="100k rows, one round: not held to the targets"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenarios, for tuning (no target table)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.memory_rows, args.naive_rows, args.repeat = 100_000, 200_000, 2_000, 1
    return args


if __name__ == "__main__":
    main()

"""run.py --extras: SafetyKit's other scenarios, beside the shapes (the first round's targets).

The re-load into the populated table, the file over HTTP on loopback, gzip'd, as a top-level
JSON array, at 16 DuckDB threads (with the reference at 16), the 4M-row memory check, the
{"data": [...]} document, the seed's naive loop, and a sweep of --memory and --threads. Those
without a time target run in the first round only.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from generate import DATA, generate  # type: ignore[import-not-found]
from run import (  # type: ignore[import-not-found]
    HERE,
    WORK,
    Scenario,
    Step,
    child_cmd,
    distinct_ids,
    resultloader_cmd,
)

from resultloader._memory import parse_size

# (memory, threads) of the sweep; threads "" is the default, which follows from the memory
SWEEP = [("256MB", "1"), ("256MB", ""), ("256MB", "8"), ("512MB", ""), ("1GB", ""), ("1GB", "32")]


class HttpServer:
    """The data directory over HTTP on loopback, in its own process (as a real server is);
    started with the first step that needs it, stopped at exit."""

    url = ""

    @classmethod
    def start(cls) -> str:
        if cls.url:
            return cls.url
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "children.py"), "serve", str(DATA), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import atexit

        atexit.register(proc.terminate)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                cls.url = f"http://127.0.0.1:{port}"
                return cls.url
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the loopback HTTP server did not start")


def sample(path: Path, rows: int) -> Path:
    out = path.with_name(f"{path.stem}-head{rows}.jsonl")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            for _, line in zip(range(rows), src, strict=False):
                dst.write(line)
    return out


def extra_steps(args: argparse.Namespace) -> list[Step]:
    n = args.rows
    files = generate(n)
    big = generate(args.memory_rows, gzip_too=False, json_too=False)["jsonl"]
    distinct = distinct_ids(files["jsonl"])
    fresh = {"rows_read": n, "rows_upserted": distinct, "bad_rows": 0}
    reload_ = {"rows_read": n, "rows_upserted": 0, "rows_unchanged": distinct}
    big_expect = {"rows_read": args.memory_rows, "rows_upserted": distinct_ids(big)}
    rl, jsonl = resultloader_cmd, str(files["jsonl"])
    url = f"{HttpServer.start()}/{files['jsonl'].name}"

    def db(key: str) -> Path:
        return WORK / f"x-{key.replace(' ', '-')}.duckdb"

    def step(key: str, title: str, cmd: list[str], expect: Any = None, **kw: Any) -> Step:
        return Step(key, Scenario(title, kw.pop("rows", n)), cmd, expect, **kw)

    steps = [
        step("reload", "safetykit: re-load into the populated table", rl(jsonl, db("sk")), reload_),
        step("http", "safetykit: over HTTP on loopback", rl(url, db("http")), fresh),
        step("gzip", "safetykit: FILE.jsonl.gz", rl(str(files["gzip"]), db("gzip")), fresh),
        step(
            "json", "safetykit: FILE.json (top-level array)", rl(str(files["json"]), db("j")), fresh
        ),
        step("many", "safetykit: --threads 16", rl(jsonl, db("m"), "--threads", "16"), fresh),
        step(
            "reference16",
            "safetykit: reference, DuckDB at 16 threads",
            child_cmd("reference", files["jsonl"], db("r16"), "16"),
            resultloader=False,
        ),
        step(
            "memory",
            "safetykit: 4x the rows (memory check)",
            rl(str(big), db("big")),
            big_expect,
            rows=args.memory_rows,
            once=True,
        ),
        step(
            "envelope",
            'safetykit: FILE.json ({"data": [...]})',
            rl(str(files["envelope"]), db("env")),
            fresh,
            once=True,
        ),
        step(
            "naive",
            "naive loop: json.loads + 1 upsert a row",
            child_cmd("naive", sample(files["jsonl"], args.naive_rows), db("naive")),
            rows=args.naive_rows,
            once=True,
            resultloader=False,
        ),
    ]
    # the re-load goes into the table of the shape's own fresh load, just before it
    steps.insert(
        0,
        step("reload-fill", "safetykit: fresh load (for the re-load)", rl(jsonl, db("sk")), fresh),
    )
    steps[1].fresh = False
    for memory, threads in SWEEP:
        flags = ["--memory", memory] + (["--threads", threads] if threads else [])
        key = f"sweep {memory} {threads}"
        title = f"sweep: --memory {memory} --threads {threads or 'default'}"
        steps.append(step(key, title, rl(jsonl, db(key), *flags), fresh, once=True))
    return steps


def extra_checks(s: dict[str, Step], bound: float) -> list[tuple[str, float, str, float]]:
    def sc(key: str) -> Scenario:
        return s[key].scenario

    fresh = sc("reload-fill")
    interpreter = sc("python").rss
    naive_total = sc("naive").wall / sc("naive").rows * fresh.rows
    print(f"naive loop extrapolated to {fresh.rows:,} rows: {naive_total:,.0f} s")
    envelope = sc("envelope").wall / fresh.wall
    print(f'{{"data": [...]}} document (ijson, no target) / JSONL: {envelope:.2f}')
    print(f"16 threads / default threads (time): {sc('many').wall / fresh.wall:.2f}")
    sweep = [
        sc(key).rss / (1.3 * parse_size(memory) / 2**20 + interpreter)
        for (memory, threads) in SWEEP
        if sc(key := f"sweep {memory} {threads}").rss_mb
    ]
    return [
        ("re-load / fresh load (time)", sc("reload").wall / fresh.wall, "<=", 1.2),
        ("HTTP loopback / local file (time)", sc("http").wall / fresh.wall, "<=", 1.1),
        ("gzip / plain (time)", sc("gzip").wall / fresh.wall, "<=", 1.3),
        ("JSON document (top-level array) / JSONL", sc("json").wall / fresh.wall, "<=", 2.0),
        ("peak RSS, 16 threads (MB)", sc("many").rss, "<=", round(bound)),
        ("peak RSS, memory check: 4x the rows (MB)", sc("memory").rss, "<=", round(bound)),
        ("sweep: peak RSS / its budget's bound (worst)", max(sweep, default=0.0), "<=", 1.0),
        ("naive / resultloader (time)", naive_total / fresh.wall, ">=", 300.0),
    ]

"""The load benchmark: resultloader against DuckDB's own readers, shape by shape, in one run.

    python benchmarks/run.py                    # every shape, 1M rows each, median of 3
    python benchmarks/run.py --shapes openai    # some shapes (safetykit snowflake openai exact csv)
    python benchmarks/run.py --extras           # and SafetyKit's re-load, HTTP, gzip, JSON
                                                # document, 16 threads, 4M-row memory check, sweep
    python benchmarks/run.py --quick            # 20k rows, one round: a smoke test
    python benchmarks/run.py --only safetykit,safetykit-ref --repeat 5    # tuning: no targets

Each shape (benchmarks/shapes.py) is loaded by `resultloader load` and by a hand-written DuckDB
reference (benchmarks/children.py: read_json or read_csv, a last-wins window, INSERT OR REPLACE
into a PRIMARY KEY table), the same rows into the same columns. The OpenAI shape is loaded plain
and `--as openai-batch` (typed columns), the latter against a reference with the same typed
columns by `->>` and casts. The exact shape (5% of lines with numbers only the exact parser
keeps) is compared with its twin, the same rows with ordinary numbers there.

Every measured command runs as a child process, one at a time, timed by wall clock; its peak RSS
and CPU time come from the kernel's rusage for that child (os.wait4). Scenarios are interleaved
in each round, so a noisy neighbour slows all of them alike, and the ratios compare medians. The
header says whether the machine was busy (its load average) when the run began: on a shared
machine read the ratios as indications, and the CPU ratios beside them as the steadier measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import DATA, SHAPES, generate_shape  # noqa: E402

from resultloader._memory import DEFAULT_MEMORY  # noqa: E402

WORK = DATA / "work"
BUDGET_MB = DEFAULT_MEMORY // 2**20  # resultloader's default --memory


@dataclass
class Scenario:
    name: str
    rows: int
    walls: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss(self) -> float:
        return statistics.median(self.rss_mb)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


@dataclass
class Step:
    """One measured command of a round: `resultloader` marks our loads (held to the budget)."""

    key: str
    scenario: Scenario
    cmd: list[str]
    expect: dict[str, int] | None = None
    once: bool = False  # first round only (no time target)
    fresh: bool = True  # a fresh database before it
    resultloader: bool = True


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
    scenario.cpus.append(cpu)
    print(f"  {scenario.name:50} {wall:6.2f} s {rss:5.0f} MB  (CPU {cpu:5.2f} s)", flush=True)
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


def distinct_ids(path: Path, key: str = "id") -> int:
    """Counted in a child: a child's peak RSS includes its parent's at the fork, so this
    process stays small."""
    out = subprocess.run(child_cmd("distinct", path, Path(), key), capture_output=True, check=True)
    return int(out.stdout)


# each shape: its scenarios (key suffix, title, reference role or resultloader flags)
REFERENCES = {"openai": "reference-openai", "csv": "reference-csv"}


def shape_steps(shape: str, path: Path, n: int) -> list[Step]:
    """The shape's load and its reference (and the typed pair, and the exact twin)."""
    key = "custom_id" if shape == "openai" else "id"
    distinct = distinct_ids(path, "id")
    expect = {"rows_read": n, "rows_upserted": distinct, "bad_rows": 0}
    db = WORK / f"{shape}.duckdb"
    ref_db = WORK / f"{shape}-ref.duckdb"
    role = REFERENCES.get(shape, "reference")
    steps = [
        Step(
            shape,
            Scenario(f"{shape}: resultloader load", n),
            resultloader_cmd(str(path), db),
            expect,
        ),
        Step(
            f"{shape}-ref",
            Scenario(f"{shape}: reference (DuckDB {role.split('-')[-1]})", n),
            child_cmd(role, path, ref_db),
            resultloader=False,
        ),
    ]
    if shape == "openai":
        typed = {**expect, "rows_upserted": distinct_ids(path, key)}
        cmd = resultloader_cmd(str(path), db, "--as", "openai-batch")
        steps.append(Step("openai-typed", Scenario("openai: --as openai-batch", n), cmd, typed))
        ref = child_cmd("reference-typed", path, ref_db)
        title = "openai: reference, typed columns"
        steps.append(Step("openai-typed-ref", Scenario(title, n), ref, resultloader=False))
    if shape == "exact":
        twin = generate_shape("exact-twin", n)
        title = "exact twin: same rows, ordinary numbers"
        steps.append(
            Step("exact-twin", Scenario(title, n), resultloader_cmd(str(twin), db), expect)
        )
    return steps


def interpreter_step() -> Step:
    """Python with resultloader and DuckDB imported: the RSS the budget comes on top of."""
    scenario = Scenario("interpreter: Python, resultloader, DuckDB", 0)
    cmd = child_cmd("interpreter", Path(), Path())
    return Step("python", scenario, cmd, once=True, resultloader=False)


def main() -> None:
    args = parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise SystemExit(f"unknown shapes {sorted(unknown)}: choose from {', '.join(SHAPES)}")
    busy = os.getloadavg()[0]
    files = {shape: generate_shape(shape, args.rows) for shape in shapes}
    steps = [interpreter_step()]
    for shape, path in files.items():
        steps += shape_steps(shape, path, args.rows)
    if args.extras:
        from extras import extra_steps

        steps += extra_steps(args)
    print(header(args, files, busy))
    only = set(filter(None, args.only.split(",")))
    for round_ in range(1, args.repeat + 1):
        print(f"round {round_}/{args.repeat}", flush=True)
        for step in steps:
            if (only and step.key not in only) or (step.once and round_ > 1):
                continue
            if step.fresh:
                for db in {Path(a) for a in step.cmd if a.endswith(".duckdb")}:
                    fresh_db(db)
            measure(step.scenario, step.cmd, step.expect)
    shutil.rmtree(WORK, ignore_errors=True)
    if only:
        return
    ok = report({s.key: s for s in steps}, args)
    if args.quick:
        print("\nA --quick run is a smoke test on few rows: it is not held to the targets.")
    sys.exit(0 if ok or args.quick else 1)


def header(args: argparse.Namespace, files: dict[str, Path], busy: float) -> str:
    sizes = ", ".join(f"{s} {p.stat().st_size / 2**20:,.0f} MiB" for s, p in files.items())
    cores = os.cpu_count() or 1
    quiet = "quiet" if busy < 0.5 else f"LOADED/UNQUIET (load average {busy:.1f} on {cores} cores)"
    return (
        f"resultloader benchmark: {args.rows:,} rows a shape ({sizes}), median of {args.repeat}\n"
        f"resultloader {version('resultloader')}, Python {platform.python_version()}, "
        f"DuckDB {version('duckdb')}, orjson {version('orjson')}, pyarrow {version('pyarrow')}, "
        f"{cores} CPUs, {platform.machine()}; machine {quiet} at the start"
        + ("\nQUICK RUN: a smoke test, not held to the targets" if args.quick else "")
    )


Check = tuple[str, float, str, float]


def ratio_checks(s: dict[str, Step]) -> list[Check]:
    """The time targets of every shape that ran: wall-time ratios of medians."""
    checks: list[Check] = []

    def ratio(a: str, b: str) -> float | None:
        if a in s and b in s and s[a].scenario.walls and s[b].scenario.walls:
            return s[a].scenario.wall / s[b].scenario.wall
        return None

    wanted = [
        (f"{shape}: resultloader / reference", shape, f"{shape}-ref", 0.8) for shape in SHAPES
    ]
    wanted += [
        ("openai: typed / plain load", "openai-typed", "openai", 1.15),
        ("openai: typed / typed reference", "openai-typed", "openai-typed-ref", 1.0),
        ("exact: exact lines / their twin (per line)", "exact", "exact-twin", 1.2),
    ]
    for name, a, b, limit in wanted:
        found = ratio(a, b)
        if found is not None:
            checks.append((name, found, "<=", limit))
    return checks


def report(s: dict[str, Step], args: argparse.Namespace) -> bool:
    print()
    head = ("scenario", "rows", "wall s", "CPU s", "rows/s", "peak RSS MB")
    print("| {:50} | {:>9} | {:>7} | {:>7} | {:>9} | {:>11} |".format(*head))
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 13}|")
    for step in s.values():
        sc = step.scenario
        if not sc.walls or not sc.rows:
            continue
        cells = (sc.name, sc.rows, sc.wall, sc.cpu, sc.rows / sc.wall, sc.rss)
        print("| {:50} | {:>9,} | {:7.2f} | {:7.2f} | {:>9,.0f} | {:>11.0f} |".format(*cells))
    interpreter = s["python"].scenario.rss
    bound = 1.3 * BUDGET_MB + interpreter
    print(
        f"\ninterpreter with resultloader and DuckDB imported: {interpreter:.0f} MB; "
        f"peak RSS bound: 1.3 x {BUDGET_MB} MB (the default --memory) + {interpreter:.0f} MB"
        f" = {bound:.0f} MB"
    )
    checks = ratio_checks(s)
    for step in s.values():
        if step.resultloader and step.scenario.rss_mb and step.key in SHAPES:
            checks.append((f"{step.key}: peak RSS (MB)", step.scenario.rss, "<=", round(bound)))
    if args.extras:
        from extras import extra_checks

        checks += extra_checks(s, bound)
    print("\nCPU time ratios (the steadier measure on a shared machine; no target):")
    for name, a, b in [(f"{x}: resultloader / reference", x, f"{x}-ref") for x in SHAPES] + [
        ("openai: typed / plain", "openai-typed", "openai"),
        ("openai: typed / typed reference", "openai-typed", "openai-typed-ref"),
        ("exact / twin", "exact", "exact-twin"),
    ]:
        if a in s and b in s and s[a].scenario.cpus and s[b].scenario.cpus:
            print(f"  {name:44} {s[a].scenario.cpu / s[b].scenario.cpu:5.2f}")
    print(f"\n| {'target':48} | {'measured':>9} | {'target':>9} | {'':10} |")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
    ok = True
    for name, value, op, limit in checks:
        good = value <= limit if op == "<=" else value >= limit
        ok &= good
        shown = f"{value:9.2f}" if value < 1000 else f"{value:9,.0f}"
        verdict = "target met" if good else "MISSED"
        print(f"| {name:48} | {shown} | {op} {limit:>6g} | {verdict:10} |")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="rows a shape (1M; --quick: 20k)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--extras", action="store_true", help="SafetyKit's other scenarios")
    parser.add_argument("--memory-rows", type=int, default=4_000_000)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument(
        "--quick", action="store_true", help="20k rows, one round: not held to the targets"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated scenario keys, for tuning (no target table)"
    )
    args = parser.parse_args()
    if args.quick:
        args.memory_rows, args.naive_rows, args.repeat = 40_000, 1_000, 1
    args.rows = args.rows or (20_000 if args.quick else 1_000_000)
    return args


if __name__ == "__main__":
    main()

"""Many files: one process, --workers 2, and Dask with two workers, in one run.

Sixteen JSONL files of 250k rows each (benchmarks/generate.py's rows, ids distinct per file) are
loaded into a fresh DuckDB file (and a Delta table, if `deltalake` is installed) three ways. Each
load runs as its own process: wall time, rows/s and its peak RSS (os.wait4); for Dask also each
worker's peak RSS. Then, in this process, the parts are staged one by one and merged one by one,
to say where the time goes: read and parse (a worker's share) against the merge (the driver's).

    python benchmarks/many.py                 # 16 x 250k rows
    python benchmarks/many.py --files 4 --rows 50000 --sinks duckdb --no-dask

Each part's DuckDB gets its share of the cores (threads // workers) and of the memory budget, so
more workers are never slower than one process: the "target" lines say whether they were.

On a 2-core machine two workers can at best halve the parse; the merge stays on the driver.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate import DATA, rows  # type: ignore[import-not-found]

SCRIPT = str(Path(sys.executable).with_name("resultloader"))


def make_files(count: int, n: int) -> list[Path]:
    """`count` files of `n` rows, cached; file i's ids are prefixed `f<i>_`."""
    folder = DATA / f"many-{count}x{n}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part{i:02d}.jsonl" for i in range(count)]
    for i, path in enumerate(paths):
        if not path.exists():
            prefix = b'{"id":"f%d_' % i
            with open(path.with_suffix(".tmp"), "wb") as f:
                for line in rows(n, seed=1000 + i):
                    f.write(line.replace(b'{"id":"', prefix, 1) + b"\n")
            path.with_suffix(".tmp").rename(path)
    return paths


def measure(args: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS in MiB, CPU seconds and the standard output of a child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {err.read().decode()[-2000:]}")
        cpu = usage.ru_utime + usage.ru_stime
        return seconds, usage.ru_maxrss / 1024, cpu, out.read().decode()


def dask_child(target: str, pattern: str) -> None:
    """In a child: a local cluster of two worker processes, the load on it, the workers'
    peak RSS printed (the cluster is ours, so we can ask its workers before closing it)."""
    import resource

    from distributed import Client, LocalCluster

    import resultloader

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    client = Client(cluster)
    try:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        resultloader.load_many(pattern, target, engine=address)

        def peak() -> float:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(" ".join(f"{mb:.0f}" for mb in client.run(peak).values()))
    finally:
        client.close()
        cluster.close()


def split_times(paths: list[Path], work: Path) -> tuple[float, float, int]:
    """Seconds to stage every file as a part (read + parse, one at a time) and to merge the
    parts into a fresh DuckDB table (one load each, in order), and the rows merged."""
    from resultloader import LoadInfo, LoadOptions
    from resultloader.pipeline.parts import replay, stage_part
    from resultloader.sinks.duckdb.sink import DuckDBSink
    from resultloader.sources.expand import Source

    options = LoadOptions()
    parts, started = [], time.perf_counter()
    for i, path in enumerate(paths):
        parts.append(stage_part(Source(str(path)), options, None, str(work), i))
    staged = time.perf_counter() - started
    sink, merged, started = DuckDBSink(work / "merge.duckdb"), 0, time.perf_counter()
    for part in parts:
        merged += replay([part], sink, LoadInfo(part.source.name, options)).rows_read
    return staged, time.perf_counter() - started, merged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--sinks", default="duckdb,delta", help="duckdb, delta (if installed)")
    parser.add_argument("--no-dask", action="store_true", help="leave out the Dask engine")
    parser.add_argument("--dask-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dask_child:
        dask_child(*args.dask_child)
        return
    paths = make_files(args.files, args.rows)
    total = args.files * args.rows
    pattern = str(paths[0].parent / "*.jsonl")
    targets = {"duckdb": "{work}/r.duckdb"}
    try:
        import deltalake  # noqa: F401

        targets["delta"] = "delta:{work}/delta"
    except ImportError:
        pass
    targets = {k: v for k, v in targets.items() if k in args.sinks.split(",")}
    ok = True
    print(f"{args.files} files x {args.rows:,} rows = {total:,} rows, {os.cpu_count()} cores")
    for name, target_form in targets.items():
        modes = {
            "one process": [SCRIPT, "load", pattern, "-q"],
            "--workers 2": [SCRIPT, "load", pattern, "-q", "--workers", "2"],
            "dask, 2 workers": [sys.executable, __file__, "--dask-child"],
        }
        if args.no_dask:
            del modes["dask, 2 workers"]
        walls: dict[str, float] = {}
        for mode, command in modes.items():
            work = Path(tempfile.mkdtemp(prefix="rl-many-"))
            target = target_form.format(work=work)
            try:
                if mode.startswith("dask"):
                    args_ = [*command, target, pattern]
                else:
                    args_ = [*command, "--into", target]
                seconds, peak, cpu, out = measure(args_)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            workers = f"; workers' peak RSS {out.split()} MiB" if out.strip() else ""
            walls[mode] = seconds
            print(
                f"{name:7} {mode:16} {seconds:7.1f}s (CPU {cpu:6.1f}s) {total / seconds:>10,.0f} "
                f"rows/s driver peak RSS {peak:5.0f} MiB{workers}"
            )
        for mode in ("--workers 2", "dask, 2 workers"):
            if mode in walls:
                ratio = walls[mode] / walls["one process"]
                verdict = "target met" if ratio <= 1.0 else "MISSED"
                ok &= ratio <= 1.0
                print(f"{name:7} {mode} / one process: {ratio:.2f} (target <= 1.0: {verdict})")
    work = Path(tempfile.mkdtemp(prefix="rl-split-"))
    try:
        staged, merged, n = split_times(paths, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"split (DuckDB, one at a time): read+parse into parts {staged:.1f}s, "
        f"merge of the parts {merged:.1f}s = {merged / n * 1e6:.2f}s per million rows"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

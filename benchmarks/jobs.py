"""Many jobs: one `ingest` after another against `ingest_many`, in one run.

Sixteen SafetyKit import requests (benchmarks/generate.py's rows, ids distinct per job) on the
loopback fake API: each answers `ingesting` for `--polls` status checks, `--interval` seconds
apart, then `succeeded` with a JSONL `data_url` on the fake download host. Loaded into a fresh
DuckDB file: first one `ingest` at a time (what a shell loop over job ids does), then
`ingest_many` with `--concurrency` pollers; then the same two with every job already ended, so
that only the loads are timed (the one writer: these should take about as long).

    python benchmarks/jobs.py                       # 16 jobs x 100k rows, 3 checks 1 s apart
    python benchmarks/jobs.py --jobs 8 --rows 20000 --polls 2 --interval 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from many import make_files  # type: ignore[import-not-found]

import resultloader
from resultloader import Job, PollPolicy
from resultloader.testing import FakeApi

KEY = "bench-key-0123456789"


def script(fake: FakeApi, files: list[Path], polls: int) -> list[Job]:
    """Each job: `polls` answers `ingesting`, then `succeeded` with its file's link."""
    jobs = []
    for i, path in enumerate(files):
        name = f"job{i}.jsonl"
        if name not in fake.files:
            fake.add_file(name, path.read_bytes(), "application/jsonl")
        running = {"status": "ingesting", "request_id": f"req{i}", "namespace": "bench"}
        done = {**running, "status": "succeeded", "data_url": fake.link(name)}
        fake.script(f"/v1/data/bench/requests/req{i}", *([running] * polls), done)
        jobs.append(Job(f"req{i}", "bench"))
    return jobs


def one_by_one(jobs: list[Job], db: str, poll: PollPolicy) -> float:
    started = time.perf_counter()
    for job in jobs:
        resultloader.ingest("safetykit", job, db, poll=poll)
    return time.perf_counter() - started


def all_at_once(jobs: list[Job], db: str, poll: PollPolicy, concurrency: int) -> float:
    started = time.perf_counter()
    results = resultloader.ingest_many(
        "safetykit", jobs, db, poll=dataclasses.replace(poll, concurrency=concurrency)
    )
    assert all(r.outcome == "loaded" for r in results), [r.error for r in results]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    files = make_files(args.jobs, args.rows)
    total = args.jobs * args.rows
    poll = PollPolicy(interval=args.interval, max_interval=args.interval)
    print(f"{args.jobs} jobs x {args.rows:,} rows; {args.polls} checks {args.interval:g} s apart")
    with FakeApi({"Authorization": f"Bearer {KEY}"}) as fake, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(SAFETYKIT_API_KEY=KEY, SAFETYKIT_BASE_URL=fake.api_url)
        for polls, what in ((args.polls, "waiting + loading"), (0, "loading only")):
            db = [str(Path(tmp) / f"{what[:4]}{n}.duckdb") for n in (1, 2)]
            serial = one_by_one(script(fake, files, polls), db[0], poll)
            many = all_at_once(script(fake, files, polls), db[1], poll, args.concurrency)
            print(
                f"{what:18} one ingest at a time {serial:7.2f} s ({total / serial:>9,.0f} rows/s)"
                f" | ingest_many x{args.concurrency} {many:7.2f} s ({total / many:>9,.0f} rows/s)"
                f" | ratio {many / serial:.2f}"
            )


if __name__ == "__main__":
    main()

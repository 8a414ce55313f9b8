"""The benchmark's shapes are what benchmarks/shapes.py says (no timing here), and run.py runs
them end to end on a few rows."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import orjson

from resultloader.parse._rows import line_needs_exact

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import shapes  # noqa: E402


def test_half_the_snowflake_rows_hold_a_64_bit_id_in_output_and_metadata():
    lines = list(shapes.snowflake_rows(2000))
    assert lines == list(shapes.snowflake_rows(2000))
    rows = [orjson.loads(line) for line in lines]
    big = [r for r in rows if r["output"] and "author_id" in r["output"]["fields"]]
    assert 0.4 < len(big) / len(rows) < 0.6
    ids = [r["output"]["fields"]["author_id"] for r in big]
    assert all(10**17 <= i < 2**63 for i in ids) and any(len(str(i)) == 19 for i in ids)
    assert any("post_id" in (r.get("metadata") or {}) for r in rows)
    assert any(ord(c) > 0xFFFF for r in big for c in r["output"]["fields"]["title"])  # emoji
    assert not any(line_needs_exact(line) for line in lines)  # 64 bits: the fast decoder


def test_openai_lines_are_1_to_4_kb_with_2_percent_failures():
    lines = list(shapes.openai_rows(3000))
    sizes = [len(line) for line in lines]
    rows = [orjson.loads(line) for line in lines]
    answered = [r for r in rows if r["response"] and r["response"]["status_code"] == 200]
    assert all(
        1000 <= len(line) <= 4096 for line, r in zip(lines, rows, strict=True) if r in answered
    )
    assert 1000 < sum(sizes) / len(sizes) < 4096
    failed = len(rows) - len(answered)
    assert 0.01 < failed / len(rows) < 0.03
    assert any(r["response"] is None and r["error"]["code"] == "batch_expired" for r in rows)
    assert any(r["response"] and r["response"]["status_code"] == 400 for r in rows)
    assert len({r["custom_id"] for r in rows}) == len(rows)


def test_five_percent_of_the_exact_shape_needs_the_exact_parser_and_its_twin_none():
    lines = list(shapes.exact_rows(4000))
    # 1e400: orjson refuses it, which sends its line to the exact parser too
    share = sum(line_needs_exact(line) or b"1e400" in line for line in lines) / len(lines)
    assert 0.035 < share < 0.065
    assert any(b"1e400" in line for line in lines)
    twin = list(shapes.exact_twin_rows(4000))
    assert not any(map(line_needs_exact, twin))
    assert [orjson.loads(a)["id"] for a in twin] == [
        orjson.loads(line.replace(b"1e400", b"1"))["id"] for line in lines
    ]


def test_the_csv_shape_has_a_header_and_json_cells():
    lines = list(shapes.csv_rows(500))
    records = list(csv.reader(io.StringIO(b"\n".join(lines).decode())))
    assert records[0] == list(shapes.CSV_HEADER)
    assert len(records) == 501
    outputs = [orjson.loads(r[1]) for r in records[1:] if r[1]]
    assert outputs and all("fields" in o for o in outputs)


def test_run_py_measures_every_shape_against_its_reference(tmp_path):
    """A smoke run: a few hundred rows a shape, one round, every scenario's command run."""
    env_data = tmp_path / "data"
    code = (
        "import sys, generate; generate.DATA = __import__('pathlib').Path(sys.argv[1]);"
        "import run; run.DATA = generate.DATA; run.WORK = generate.DATA / 'work';"
        "sys.argv = ['run.py', '--quick', '--rows', '300']; run.main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(env_data)],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for shape in ("safetykit", "snowflake", "openai", "exact", "csv"):
        assert f"{shape}: resultloader / reference" in done.stdout
    assert "openai: typed / typed reference" in done.stdout
    assert "DuckDB 2." in done.stdout.splitlines()[1]

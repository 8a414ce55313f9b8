"""The benchmark's generator makes the rows docs/performance.md says it does (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import generate


def test_rows_are_deterministic_and_shaped_like_the_seed():
    lines = list(generate.rows(600))
    assert lines == list(generate.rows(600))
    rows = [orjson.loads(line) for line in lines]
    assert all(set(r) <= {"id", "output", "metadata", "url"} and "url" in r for r in rows)
    null_share = sum(r["output"] is None for r in rows) / len(rows)
    no_meta_share = sum("metadata" not in r for r in rows) / len(rows)
    assert 0.01 < null_share < 0.10
    assert 0.20 < no_meta_share < 0.40
    assert len({r["id"] for r in rows}) < len(rows)  # duplicate ids
    assert 200 < sum(map(len, lines)) / len(lines) < 260  # about 230 bytes a row
    outputs = [r["output"] for r in rows if r["output"]]
    assert any(o["labels"] for o in outputs) and any(o["actions"] for o in outputs)
    assert any(ord(c) > 127 for o in outputs for c in o["fields"]["title"])


def test_big_integers_are_written_exactly():
    bigs = [line for line in generate.rows(2000) if b"external_ref" in line]
    assert bigs
    for line in bigs:
        digits = line.split(b'"external_ref":')[1].split(b"}")[0]
        assert digits.isdigit() and len(digits) > 20  # beyond 64 bits, not a float


def test_generate_writes_the_same_rows_as_jsonl_gzip_and_json(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setattr(generate, "DATA", tmp_path)
    files = generate.generate(300)
    lines = files["jsonl"].read_bytes().splitlines()
    assert len(lines) == 300
    assert gzip.decompress(files["gzip"].read_bytes()).splitlines() == lines
    assert len(orjson.loads(files["json"].read_bytes().replace(b"\n", b""))) == 300
    envelope = orjson.loads(files["envelope"].read_bytes())
    assert [orjson.dumps(r) for r in envelope["data"]] == [
        orjson.dumps(orjson.loads(line)) for line in lines
    ]

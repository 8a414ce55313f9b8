"""Deterministic result files: SafetyKit's import results, and the other shapes of shapes.py.

About 230 bytes a row: ~5% `output: null`, ~30% rows without `metadata`, ~1% duplicate ids,
labels, actions, nested `fields` with unicode text, and ~2% rows holding integers too large for
64 bits. The same rows are written as JSONL, gzip'd JSONL, and one JSON document (a top-level
array). Files are cached by row count and format version: a second run reuses them.

    python benchmarks/generate.py 1000000                  # prints the paths
    python benchmarks/generate.py 1000000 --shapes openai,csv
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

VERSION = 2
DATA = Path(__file__).resolve().parent / "data"
LABELS = (
    "policy.example_violation",
    "illegal_drugs.violation",
    "hazardous.violation",
    "spam.low_quality",
    "fraud.needs_review",
)
WORDS = ("héllo", "wörld", "日本語", "текст", "emoji🙂", "plain", "data", "naïve", "café", "straße")


def rows(n: int, seed: int = 20240601) -> Iterator[bytes]:
    """`n` JSONL lines (without newline), the same for the same `n` and `seed`."""
    rnd = random.Random(seed)
    for i in range(n):
        dup = i > 0 and rnd.random() < 0.01
        rid = rnd.randrange(i) if dup else i
        row: dict[str, object] = {"id": f"product_{rid:08d}"}
        row["output"] = None if rnd.random() < 0.05 else _output(rnd)
        if rnd.random() >= 0.30:
            row["metadata"] = {"source": "backfill", "batch": rnd.randrange(100)}
        row["url"] = f"https://app.safetykit.com/review/{rid}"
        yield orjson.dumps(row)


def _output(rnd: random.Random) -> dict[str, object]:
    fields: dict[str, object] = {
        "title": " ".join(rnd.choice(WORDS) for _ in range(3)),
        "score": rnd.randrange(10**6),
    }
    if rnd.random() < 0.02:  # beyond 64 bits: must land exactly, as written
        fields["external_ref"] = orjson.Fragment(str(rnd.randrange(10**25, 10**30)))
    return {
        "actions": [{"action": "manual_review", "queue": "high_risk"}]
        if rnd.random() < 0.2
        else [],
        "labels": [{"label": rnd.choice(LABELS)} for _ in range(rnd.randrange(3))],
        "fields": fields,
    }


def paths(n: int) -> dict[str, Path]:
    stem = DATA / f"results-{n}-v{VERSION}"
    return {
        "jsonl": stem.with_suffix(".jsonl"),
        "gzip": stem.with_suffix(".jsonl.gz"),
        "json": stem.with_suffix(".json"),
        "envelope": stem.with_name(f"{stem.name}-data.json"),
    }


def generate(n: int, *, gzip_too: bool = True, json_too: bool = True) -> dict[str, Path]:
    """Write (or reuse) the files for `n` rows; returns their paths by kind."""
    out = paths(n)
    DATA.mkdir(parents=True, exist_ok=True)
    if not out["jsonl"].exists() or (json_too and not out["json"].exists()):
        _write_jsonl_and_json(n, out["jsonl"], out["json"] if json_too else None)
    if gzip_too and not out["gzip"].exists():
        part = out["gzip"].with_suffix(".part")
        with out["jsonl"].open("rb") as src, gzip.open(part, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        part.rename(out["gzip"])
    if json_too and not out["envelope"].exists():
        _write_envelope(out["json"], out["envelope"])
    return out


def _write_envelope(array: Path, envelope: Path) -> None:
    """The same items under a `data` key, as list endpoints wrap them: the ijson path."""
    part = envelope.with_suffix(".part")
    with array.open("rb") as src, part.open("wb") as dst:
        dst.write(b'{"object": "list", "data": ')
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.write(b', "has_more": false}\n')
    part.rename(envelope)


def _write_jsonl_and_json(n: int, jsonl: Path, json: Path | None) -> None:
    parts = [jsonl.with_suffix(".part")] + ([json.with_suffix(".jpart")] if json else [])
    with parts[0].open("wb") as lines, parts[1].open("wb") if json else _Null() as doc:
        doc.write(b"[\n")
        for i, line in enumerate(rows(n)):
            lines.write(line + b"\n")
            doc.write((b",\n" if i else b"") + line)
        doc.write(b"\n]\n")
    parts[0].rename(jsonl)
    if json:
        parts[1].rename(json)


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def shape_lines() -> dict[str, tuple[Callable[[int], Iterator[bytes]], str]]:
    """Each shape's line generator and file suffix."""
    from shapes import csv_rows, exact_rows, exact_twin_rows, openai_rows, snowflake_rows

    return {
        "safetykit": (rows, ".jsonl"),
        "snowflake": (snowflake_rows, ".jsonl"),
        "openai": (openai_rows, ".jsonl"),
        "exact": (exact_rows, ".jsonl"),
        "exact-twin": (exact_twin_rows, ".jsonl"),
        "csv": (csv_rows, ".csv"),
    }


SHAPES = ("safetykit", "snowflake", "openai", "exact", "csv")


def generate_shape(shape: str, n: int) -> Path:
    """Write (or reuse) the file of `n` rows of `shape` (one of SHAPES); its path."""
    if shape == "safetykit":
        return generate(n, gzip_too=False, json_too=False)["jsonl"]
    lines, suffix = shape_lines()[shape]
    path = DATA / f"{shape}-{n}-v{VERSION}{suffix}"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        with part.open("wb") as out:
            for line in lines(n):
                out.write(line + b"\n")
        part.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--shapes", default="", help=f"comma-separated, of {', '.join(SHAPES)}")
    args = parser.parse_args()
    if not args.shapes:
        for kind, path in generate(args.rows).items():
            print(f"{kind:5} {path} ({path.stat().st_size / 2**20:,.1f} MiB)")
    for shape in filter(None, args.shapes.split(",")):
        path = generate_shape(shape, args.rows)
        print(f"{shape:9} {path} ({path.stat().st_size / 2**20:,.1f} MiB)")


if __name__ == "__main__":
    main()

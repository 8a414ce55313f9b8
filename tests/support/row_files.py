"""Files of many rows, and sets of files, for the load tests."""

from __future__ import annotations

import json
import random
from pathlib import Path


def many_rows(path: Path, count: int = 1_000_000) -> int:
    """About 100 bytes a row, 1% repeated ids: at 16 threads and the 64 MB DuckDB used to get,
    the merge of these rows failed with DuckDB's "Out of Memory (61.0 MiB/61.0 MiB used)"."""
    rnd, ids = random.Random(7), set()
    with path.open("w") as out:
        for i in range(count):
            rid = rnd.randrange(i) if i and rnd.random() < 0.01 else i
            ids.add(rid)
            out.write(
                f'{{"id":"product_{rid:08d}","output":{{"score":{i}}},'
                f'"url":"https://app.example.com/review/{rid}"}}\n'
            )
    return len(ids)


def jsonl(*rows: tuple[str, object]) -> str:
    return "".join(json.dumps({"id": i, "output": o}) + "\n" for i, o in rows)


def bad_rows_files(tmp_path: Path, n: int) -> list[str]:
    """n files with ids shared across them, a bad line each, numbers a double would round."""
    paths = []
    for f in range(n):
        path = tmp_path / f"part{f:02d}.jsonl"
        lines = [
            f'{{"id":"k{i % 50}","output":{{"f":{f},"v":0.1000000000000000055511}}}}'
            for i in range(f * 30, f * 30 + 200)
        ]
        lines.insert(7, "{broken")
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths

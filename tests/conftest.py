from __future__ import annotations

from pathlib import Path

import pytest

SEED_ROWS = (
    '{"id":"product_12345","output":{"actions":[],"labels":[{"label":"policy.example_violation"}],'
    '"fields":{}},"metadata":{"source":"backfill"},"url":"https://app.safetykit.com/..."}\n'
    '{"id":"product_67890","output":{"actions":[{"action":"manual_review","queue":"high_risk"}],'
    '"labels":[],"fields":{}},"metadata":{},"url":"https://app.safetykit.com/..."}\n'
)


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text_or_bytes) -> path of a new file in tmp_path."""

    def _write(name: str, data: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return _write

"""The ```python examples of docs/iceberg.md, run as they are (each in a fresh namespace, the
variables they set undone after)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "iceberg.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples():
    assert EXAMPLES


@pytest.mark.parametrize("n", range(len(EXAMPLES)))
def test_each_python_example_runs(n, monkeypatch):
    for name in ("TYPE", "URI", "WAREHOUSE"):  # what the example sets, restored after
        monkeypatch.setenv(f"PYICEBERG_CATALOG__LAKE__{name}", "unset")
    exec(compile(EXAMPLES[n], f"{DOC}:example {n + 1}", "exec"), {"__name__": "__doc__"})

"""Helpers for testing code that uses resultloader, and for writing a provider or a sink.

`MemorySink` keeps rows in a dict and commits or aborts like a database. `FakeApi` is a
provider's API on loopback with a presigned download host beside it: scripted status replies,
files behind links that expire or drop, every request's headers recorded, and any secret that
reaches the download host kept in `leaks`. `FakeClock` is time for `PollPolicy` that nothing
waits on. `SinkContract` (with `ContractTarget`; needs pytest) is the sink contract as tests,
for a sink's author to run against their sink (contract.py).
"""

from __future__ import annotations

import sys
from typing import Any

from ..sinks.memory import MemorySink
from ._fake_api import EXPIRED_XML, FakeApi, Reply, Seen
from .clock import FakeClock

__all__ = [
    "EXPIRED_XML",
    "ContractTarget",
    "FakeApi",
    "FakeClock",
    "MemorySink",
    "Reply",
    "Seen",
    "SinkContract",
]


def __getattr__(name: str) -> Any:
    """The contract's names, imported when named: only they need pytest."""
    if name not in ("SinkContract", "ContractTarget"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"{__name__}.contract"
    if module not in sys.modules:
        import pytest

        pytest.register_assert_rewrite(module)  # its failures then show the values compared
    from . import contract

    return getattr(contract, name)

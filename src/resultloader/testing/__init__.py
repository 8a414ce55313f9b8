"""Helpers for testing code that uses resultloader, and for writing a provider.

`MemorySink` keeps rows in a dict and commits or aborts like a database. `FakeApi` is a
provider's API on loopback with a presigned download host beside it: scripted status replies,
files behind links that expire or drop, every request's headers recorded, and any secret that
reaches the download host kept in `leaks`.
"""

from ..sinks.memory import MemorySink
from ._fake_api import EXPIRED_XML, FakeApi, Reply, Seen

__all__ = ["EXPIRED_XML", "FakeApi", "MemorySink", "Reply", "Seen"]

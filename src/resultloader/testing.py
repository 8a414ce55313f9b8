"""Helpers for testing code that uses resultloader.

`MemorySink` keeps rows in a dict and commits or aborts like a database.
"""

from .sinks.memory import MemorySink

__all__ = ["MemorySink"]

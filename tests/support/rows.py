"""Rows the tests share: the seed file's rows, and helpers to compare what parsers yield."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from resultloader import RowBatch

SEED_ROWS = (
    '{"id":"product_12345","output":{"actions":[],"labels":[{"label":"policy.example_violation"}],'
    '"fields":{}},"metadata":{"source":"backfill"},"url":"https://app.safetykit.com/..."}\n'
    '{"id":"product_67890","output":{"actions":[{"action":"manual_review","queue":"high_risk"}],'
    '"labels":[],"fields":{}},"metadata":{},"url":"https://app.safetykit.com/..."}\n'
)


def merge_batches(batches: Iterable[object]) -> RowBatch:
    """One RowBatch of every row and reject a parser yielded, in order."""
    merged = RowBatch()
    for batch in batches:
        assert isinstance(batch, RowBatch)
        merged.extend(batch)
    return merged


def exact_numbers(value: Any) -> Any:
    """Floats as the Decimal of their shortest text, so comparisons are of exact values."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact_numbers(v) for v in value]
    return value

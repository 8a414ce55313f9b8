"""Comparing JSON values across routes: numbers by their exact value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def same_values(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers by exact value (a float as its decimal text), -0.0 kept."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(same_values, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        x, y = exact_decimal(a), exact_decimal(b)
        return x == y and x.is_signed() == y.is_signed()
    return type(a) is type(b) and a == b


def exact_decimal(n: int | float | Decimal) -> Decimal:
    return Decimal(repr(n)) if isinstance(n, float) else Decimal(n)

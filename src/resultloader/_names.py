"""Names that reach SQL: tables, key fields, columns."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_name(kind: str, name: str) -> str:
    """Refuse a table or field name that is not a plain identifier (no SQL injection)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):  # `$` would let "x\n" in
        raise ValueError(
            f"invalid {kind} name {name!r}: use letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    return name

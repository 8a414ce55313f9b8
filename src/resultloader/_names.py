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


def check_key(key: str) -> str:
    """A key is a field name or a dotted path of them (`response.request_id`), as provider
    mappings name fields; each part a plain identifier, as check_name wants."""
    if not isinstance(key, str) or not all(_NAME.fullmatch(p) for p in key.split(".")):
        raise ValueError(
            f"invalid key name {key!r}: a field name, or a dotted path of them "
            "(response.request_id); letters, digits and underscores, each starting with a "
            "letter or underscore"
        )
    return key

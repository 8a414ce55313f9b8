"""Typed columns: a value of the row, typed, beside the raw row it came from.

The row stays `(id, output, metadata, url, extra)`, raw and exact. A column adds one value of it
under a name and a type: a provider declares the columns its users query (tokens, the answer's
text, an error's message), a user adds their own (`--column NAME=PATH::TYPE`). Sinks compute
them where rows are staged (DuckDB SQL over the staged JSON: sinks/columns.py) and store them in
their own types. A value that does not fit its type exactly is a bad row naming the column,
never a rounded, truncated or NULL value; a missing path or a JSON null is NULL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._names import check_name

ROW_FIELDS = ("id", "output", "metadata", "url", "extra")
RESERVED = (*ROW_FIELDS, "_source", "_loaded_at")
_SIMPLE_TYPES = {
    "text": "text",
    "varchar": "text",
    "string": "text",
    "bigint": "bigint",
    "int": "bigint",
    "integer": "bigint",
    "double": "double",
    "float": "double",
    "boolean": "boolean",
    "bool": "boolean",
    "timestamp": "timestamp",
    "json": "json",
}
_DECIMAL = re.compile(r"(?:decimal|numeric)\((\d+),(\d+)\)")
# one step of a path: a name (quoted with "..." when it holds other characters), [N] or [*]
_STEP = re.compile(r'\.?(?:([A-Za-z_$][\w$-]*)|"((?:[^"\\]|\\.)*)")|\[(\d+|\*)\]')
TYPES_HELP = "text, bigint, double, decimal(p,s), boolean, timestamp, json"


@dataclass(frozen=True)
class Column:
    """`name` holds the value at the first of `paths` that is present and not null, as
    `type`. A path starts at a field of the row (`output.usage.total_tokens`,
    `extra.error.message`, `output.choices[0].message.content`); `[*]` takes every item (a
    text column joins the strings it finds). A provider may give `sql` instead: a DuckDB
    expression over the row's columns `id, output, metadata, url, extra` (JSON values)."""

    name: str
    type: str = "text"
    paths: tuple[str, ...] = ()
    sql: str | None = None

    def __post_init__(self) -> None:
        check_name("column", self.name)
        if self.name.lower() in RESERVED:
            raise ValueError(f"column {self.name!r}: the table has a column of that name already")
        object.__setattr__(self, "type", normal_type(self.type))
        if bool(self.paths) == (self.sql is not None):
            raise ValueError(f"column {self.name!r}: give paths or sql (one of them)")
        for path in self.paths:
            split_path(path)  # refused here, when declared, not when the load runs

    @property
    def declaration(self) -> str:
        """How the ledger records the column: `name type`."""
        return f"{self.name} {self.type}"


def normal_type(text: str) -> str:
    """The column type in this module's words (`decimal(10,2)`), or ValueError naming them."""
    plain = re.sub(r"\s+", "", text.lower())
    if plain in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[plain]
    found = _DECIMAL.fullmatch(plain)
    if found:
        precision, scale = int(found.group(1)), int(found.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}): precision 1-38, scale at most it")
        return f"decimal({precision},{scale})"
    raise ValueError(f"unknown column type {text!r}: use one of {TYPES_HELP}")


def decimal_digits(column_type: str) -> tuple[int, int] | None:
    """(precision, scale) of a decimal type, else None."""
    found = _DECIMAL.fullmatch(column_type)
    return (int(found.group(1)), int(found.group(2))) if found else None


def split_path(path: str) -> tuple[str, list[str]]:
    """The row field a path starts at, and its steps after it: names, `[N]` and `[*]`."""
    field, _, rest = path.partition(".")
    bracket = field.find("[")
    if bracket >= 0:
        field, rest = field[:bracket], field[bracket:] + ("." + rest if rest else "")
    if field not in ROW_FIELDS:
        raise ValueError(f"path {path!r} must start at a field of the row: {', '.join(ROW_FIELDS)}")
    steps: list[str] = []
    at = 0
    while at < len(rest):
        step = _STEP.match(rest, at)
        if step is None or step.end() == at:
            raise ValueError(f"path {path!r}: cannot read it from {rest[at:]!r}")
        name, quoted, index = step.groups()
        steps.append(f"[{index}]" if index is not None else name if name else quoted)
        at = step.end()
    if steps and field in ("id", "url"):
        raise ValueError(f"path {path!r}: {field} is text, it has no parts")
    return field, steps


def parse_column(spec: str) -> Column:
    """`NAME=PATH[::TYPE]`, the command line's --column: `tokens=output.usage.total_tokens::bigint`
    (the type is text when not given)."""
    name, eq, rest = spec.partition("=")
    if not eq or not rest:
        raise ValueError(
            f"--column {spec!r}: write NAME=PATH[::TYPE], "
            "e.g. tokens=output.usage.total_tokens::bigint"
        )
    path, _, column_type = rest.partition("::")
    return Column(name.strip(), column_type.strip() or "text", (path.strip(),))

"""How a provider's result lines map to the table's columns, declared rather than coded.

OpenAI's lines are `{id, custom_id, response: {status_code, request_id, body}, error}`: the row's
`id` is `custom_id`, its `output` is `response.body` when the status code is 2xx, and a few other
fields are kept in `extra`. A `RowMapping` says so in data; the parsers apply it where a line
becomes a row, so mapped rows share every route's rules (exact numbers, last row wins, bad rows
per `on_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MISSING = object()  # what at_path finds where nothing is


def at_path(obj: Any, path: str) -> Any:
    """The value at dotted `path` inside `obj`, or `MISSING`."""
    node = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


@dataclass(frozen=True)
class When:
    """A condition on one field: equal to one of `equals`, or an integer in `between`."""

    path: str
    equals: tuple[str, ...] = ()
    between: tuple[int, int] | None = None

    def holds(self, obj: Mapping[str, Any]) -> bool:
        value = at_path(obj, self.path)
        if value is MISSING or value is None or isinstance(value, bool):
            return False
        if self.equals and str(value) in self.equals:
            return True
        if self.between is not None:
            try:
                number = int(str(value))  # an int, or a number kept as text (RawNumber)
            except ValueError:
                return False
            return self.between[0] <= number <= self.between[1]
        return False


@dataclass(frozen=True)
class RowMapping:
    """`key`: dotted path to the row's id. `output`: dotted path to its output, or `"*"` for the
    rest of the line (without the key and the kept fields); `output_when`: the output is NULL
    unless this holds, and the `otherwise_keep` paths go to `extra` instead (a failed request's
    body: nothing of a failure is dropped). `keep`: dotted paths copied into `extra`, nested as
    in the line (absent and null ones are left out). Everything else in the line is dropped.
    `layout`: the paths as the provider's lines write them, in order, e.g. `("id",
    "custom_id", "response.status_code", ...)`; only a hint for speed (the DuckDB route then
    rules out duplicate keys by comparing a line with its fields written back)."""

    key: str
    output: str = "output"
    output_when: When | None = None
    keep: tuple[str, ...] = ()
    otherwise_keep: tuple[str, ...] = ()
    layout: tuple[str, ...] = ()

    def apply(self, obj: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]] | str:
        """(id value, output or None, extra) of one line, or the reason it is no row."""
        row_id = at_path(obj, self.key)
        if row_id is MISSING:
            return f"no {self.key!r} field"
        if self.output_when is not None and not self.output_when.holds(obj):
            return row_id, None, _kept(obj, self.keep + self.otherwise_keep)
        extra = _kept(obj, self.keep)
        if self.output == "*":
            return row_id, _rest(obj, {self.key, *self.keep}), extra
        output = at_path(obj, self.output)
        return row_id, (None if output is MISSING else output), extra


class _Slots(dict[str, Any]):
    """An object of `extra` being filled: its keys in the mapping's order, absent ones pruned
    at the end (so that the order never depends on which fields a line has: the SQL route
    writes the same text)."""


def _kept(obj: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The values at `paths` (absent and null ones left out), nested as in `obj`, each object's
    keys in the order the paths first name them."""
    slots = _Slots()
    for path in paths:
        value = at_path(obj, path)
        _put(slots, path, MISSING if value is None else value)
    return _filled(slots)


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        if not isinstance(target.get(part), dict):
            target[part] = _Slots()
        target = target[part]
    if value is not MISSING or last not in target:
        target[last] = value


def _filled(slots: _Slots) -> dict[str, Any]:
    filled = {}
    for name, value in slots.items():
        if isinstance(value, _Slots):
            value = _filled(value)
            if not value:
                continue
        if value is not MISSING:
            filled[name] = value
    return filled


def _rest(obj: Mapping[str, Any], taken: set[str]) -> dict[str, Any]:
    """The line without the top-level fields that went elsewhere."""
    return {k: v for k, v in obj.items() if k not in taken}

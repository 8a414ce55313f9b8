"""A provider's RowMapping as DuckDB SQL over a chunk's lines: the native insert of mapped rows.

The rows are those `RowMapping.apply` makes in Python (parse/_rows._add_mapped): the id at the
key's path, the output at its path when `output_when` holds, `extra` the kept paths nested as in
the line (absent and null ones left out). One json_extract reads every path of a line in one
parse. A line goes to Python, as the native insert's do, where SQL could not tell the same
story exactly: an id that is not a string or an integer (or none), an `output_when` value other
than an integer, null, a boolean or (for `equals`) a string, the numbers and nesting the plain
native insert leaves to Python, and duplicate keys on a path's way (DuckDB reads the first,
Python the last). Duplicates are ruled out cheaply where the line is laid out as the mapping's
`layout` says (the line equals its fields written back), else by its keys.
A mapping SQL cannot express (`output="*"`, paths inside paths, odd names) gives None: the load
maps every line in Python.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..._columns import Column, split_path
from ..._mapping import RowMapping, When
from ..columns import EXACT, json_path, values_sql

Tree = dict[str, Any]  # names to SQL values, or to the objects under them
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER = "regexp_full_match({v}, '-?[0-9]+')"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key(name: str) -> str:
    """`"name":` as compact JSON writes it, as a SQL literal."""
    return _literal(orjson.dumps(name).decode() + ":")


def compilable(mapping: RowMapping) -> bool:
    """Can SQL map this mapping's lines? Not `output="*"` (the rest of the line), names that
    are not plain identifiers, or a kept path inside another."""
    paths = _paths(mapping)
    if mapping.output == "*" or not all(
        _NAME.fullmatch(p) for path in paths for p in path.split(".")
    ):
        return False
    # a path inside another kept path: Python nests one into the other, SQL would not
    return not any(a != b and b.startswith(a + ".") for a in paths for b in paths)


def _paths(mapping: RowMapping) -> list[str]:
    """Every path the mapping reads, once each, in a fixed order (json_extract's list)."""
    when = [mapping.output_when.path] if mapping.output_when else []
    found = [mapping.key, mapping.output, *when, *mapping.keep, *mapping.otherwise_keep]
    found += list(mapping.layout)
    return list(dict.fromkeys(found))


class _Values:
    """A path's value in the line's one json_extract: `v[i]`, JSON text or NULL if absent."""

    def __init__(self, paths: list[str]) -> None:
        self.index = {path: i + 1 for i, path in enumerate(paths)}

    def __call__(self, path: str) -> str:
        return f"v[{self.index[path]}]"


def _present(v: str) -> str:
    return f"({v} IS NOT NULL AND {v} <> 'null')"


def _condition(when: When | None, v: _Values) -> tuple[str, str]:
    """(the output_when as SQL over an integer, null, boolean or string value; the test that
    the value is one SQL decides exactly)."""
    if when is None:
        return "true", "true"
    value = v(when.path)
    kinds = [f"{value} IS NULL", f"{value} IN ('null', 'true', 'false')", _INTEGER.format(v=value)]
    tests = []
    if when.equals:
        kinds.append(f"ascii({value}) = 34")
        options = ", ".join(_literal(e) for e in when.equals)
        tests.append(f"(ascii({value}) = 34 AND {value}->>'$' IN ({options}))")
        tests.append(f"({_INTEGER.format(v=value)} AND {value} IN ({options}))")
    if when.between is not None:
        low, high = when.between
        number = f"TRY_CAST({value} AS HUGEINT)"
        tests.append(f"({_INTEGER.format(v=value)} AND {number} BETWEEN {low} AND {high})")
    holds = f"coalesce({' OR '.join(tests) or 'false'}, false)"
    return holds, " OR ".join(kinds)


def _object(entries: list[tuple[str, str]]) -> str:
    """`{"a":...,...}` of the (name, JSON value or NULL) entries present, or NULL."""
    parts = ", ".join(
        f"CASE WHEN {_present(value)} THEN {_key(name)} || {value} END" for name, value in entries
    )
    return f"nullif('{{' || concat_ws(',', {parts}) || '}}', '{{}}')"


def _extra(mapping: RowMapping, v: _Values, holds: str) -> str:
    """`extra` as Python nests it: the kept paths in order, then (where the output_when does
    not hold) the otherwise_keep ones, each inside its parents' objects."""
    tree: Tree = {}
    for path in mapping.keep:
        _insert(tree, path.split("."), v(path))
    for path in mapping.otherwise_keep:
        _insert(tree, path.split("."), f"CASE WHEN NOT {holds} THEN {v(path)} END")
    return _render(tree)


def _insert(tree: Tree, parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def _render(tree: Tree) -> str:
    entries = [
        (name, _render(node) if isinstance(node, dict) else node) for name, node in tree.items()
    ]
    return _object(entries)


def _no_duplicates(mapping: RowMapping) -> str:
    """No key on a path's way is written twice: where the line is laid out as `layout` says
    (`laid_out`: it equals its fields written back compactly), else by the keys of each
    object on the way."""
    parents = sorted(
        {".".join(p.split(".")[:i]) for p in _paths(mapping) for i in range(p.count(".") + 1)}
    )
    by_keys = " AND ".join(
        f"len(json_keys({_at(p)})) = len(list_distinct(json_keys({_at(p)})))" for p in parents
    )
    if not mapping.layout:
        return f"coalesce({by_keys}, false)"
    return f"CASE WHEN laid_out THEN true ELSE coalesce({by_keys}, false) END"


def _at(parent: str) -> str:
    return f"raw, {_literal('$.' + parent)}" if parent else "raw"


def _laid_out(layout: tuple[str, ...], v: _Values) -> str:
    """The line is exactly its layout's fields, compact (each object of it too, or null)."""
    tree: Tree = {}
    for path in layout:
        _insert(tree, path.split("."), path)
    plain = _plain(tree, "", v)
    tests = [f"starts_with(raw, {plain})", f"strlen(raw) <= strlen({plain}) + 1"]
    tests += _nested_tests(tree, "", v)
    return "coalesce(" + " AND ".join(f"({t})" for t in tests) + ", false)"


def _plain(tree: Tree, prefix: str, v: _Values) -> str:
    """The compact text of `tree`'s object from its fields' values (NULL if one is missing),
    in one concat: a chain of `||` would copy the long values once a field."""
    names = [prefix + name for name in tree]
    items = [
        f"{_literal(',' if i else '')}, {_key(name)}, {v(prefix + name)}"
        for i, name in enumerate(tree)
    ]
    present = " AND ".join(f"{v(name)} IS NOT NULL" for name in names)
    return f"(CASE WHEN {present} THEN concat('{{', {', '.join(items)}, '}}') END)"


def _nested_tests(tree: Tree, prefix: str, v: _Values) -> list[str]:
    tests = []
    for name, node in tree.items():
        if isinstance(node, dict):
            path = f"{prefix}{name}"
            whole = v(path)
            tests.append(f"{whole} = 'null' OR {whole} = {_plain(node, path + '.', v)}")
            tests += _nested_tests(node, path + ".", v)
    return tests


def _line_path(mapping: RowMapping, path: str) -> tuple[str, str] | None:
    """A typed column's path as (a JSONPath into the line, when the row's field holds what is
    there), or None where the row's field is not a copy of a part of the line: `output`
    itself, `extra` above a kept path, `[*]`, `id`, `metadata`, `url`."""
    field, steps = split_path(path)
    if not steps or "[*]" in steps:
        return None
    if field == "output":
        return "$." + mapping.output + json_path(steps)[1:], "holds"
    if field != "extra":
        return None
    kept = [(k, "true") for k in mapping.keep if k not in mapping.otherwise_keep]
    kept += [(k, "NOT holds") for k in mapping.otherwise_keep if k not in mapping.keep]
    for name, when in kept:
        parts = name.split(".")
        if steps[: len(parts)] == parts:  # at or inside a kept path: as in the line
            return json_path(steps), when
    return None


def _typed_values(mapping: RowMapping, columns: tuple[Column, ...], v: _Values) -> str:
    """The columns' values (`_v0, ...`), each path that `extra` or `output` copies from the
    line read from the line's own parse (`v`); the others from the row, as `with_values`."""
    raw = {p: _line_path(mapping, p) for c in columns for p in c.paths}

    def read(path: str) -> str | None:
        found = raw.get(path)
        if found is None:
            return None
        where, when = found
        return f"CASE WHEN {when} THEN nullif(v[{v.index[where]}], 'null') END"

    return f"{values_sql(columns, read=read)}, true AS {EXACT}"


def mapped_rows_sql(
    mapping: RowMapping,
    lines: str,
    blank: str,
    needs_python: str,
    columns: tuple[Column, ...] = (),
) -> str | None:
    """SELECT seq, id, output, metadata, url, extra (and the columns' values, as the stage
    holds them) of the lines SQL maps exactly, or None. In layers, so that each test is
    computed once a line: the values (one parse, the typed columns' paths too), whether the
    output_when holds and whether the line is laid out as expected, then the row."""
    if not compilable(mapping):
        return None
    paths = _paths(mapping)
    for path in mapping.layout:  # the objects the layout nests are read whole too
        parts = path.split(".")
        paths += [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p not in paths]
    v = _Values(paths)
    read = [_line_path(mapping, p) for c in columns for p in c.paths]
    for where in dict.fromkeys(found[0] for found in read if found is not None):
        v.index[where] = len(v.index) + 1  # JSONPaths, beside the mapping's plain paths
    jsonpaths = ", ".join(_literal(p if p.startswith("$") else "$." + p) for p in v.index)
    holds, decidable = _condition(mapping.output_when, v)
    laid_out = _laid_out(mapping.layout, v) if mapping.layout else "false"
    key = v(mapping.key)
    native = f"""(ascii({key}) = 34 OR {_INTEGER.format(v=key)})
        AND ({decidable})
        AND CASE WHEN maybe_inexact = 0 THEN true WHEN maybe_inexact = 2 THEN false
                 ELSE NOT regexp_matches(raw, '{needs_python}') END
        AND CASE WHEN strlen(raw) > 508
                 THEN strlen(raw) - strlen(replace(replace(raw, '[', ''), '{{', '')) <= 254
                 ELSE true END
        AND {_no_duplicates(mapping)}"""
    rows = f"""SELECT seq, {key}->>'$' AS id,
        CASE WHEN holds THEN nullif({v(mapping.output)}, 'null') END AS output,
        NULL::JSON AS metadata, NULL::VARCHAR AS url, ({_extra(mapping, v, "holds")})::JSON AS extra
        {", v, holds" if columns else ""}
    FROM (SELECT *, {holds} AS holds, {laid_out} AS laid_out FROM (
        SELECT seq, raw, maybe_inexact, json_extract(raw, [{jsonpaths}]) AS v
        FROM {lines} WHERE starts_with(raw, '{{') OR NOT regexp_full_match(raw, '{blank}')))
    WHERE coalesce({native}, false)"""
    if not columns:
        return rows
    values = _typed_values(mapping, columns, v)
    return f"SELECT seq, id, output, metadata, url, extra, {values} FROM ({rows})"

"""Tell JSONL from a JSON document by the structure of the first value, not its first line.

A first line is a poor guide: a minified `{"data":[...]}` document is one line, and a JSONL row
can be longer than the bytes looked at. So the first value's tokens are read as far as the head
goes: where it ends, whether a newline falls inside it, and its top-level keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# a whole string, a punctuation mark, a newline, or a quote whose string outruns the head
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,\n]|"')


@dataclass
class FirstValue:
    """What the head shows of the first JSON value (an object or an array)."""

    end: int | None = None  # where it ends, if within the head
    newline_inside: bool = False  # pretty-printed: a document, not a JSONL line
    keys: dict[bytes, bytes] = field(default_factory=dict)  # top-level key -> its value's start


def first_value(text: bytes) -> FirstValue:
    found = FirstValue()
    depth, prev, key = 0, b"", b""
    for match in _TOKEN.finditer(text):
        token = match[0]
        if token == b'"':
            break  # a string longer than the head
        if token == b"\n":
            found.newline_inside = found.newline_inside or depth > 0
            continue
        if depth == 1 and text[:1] == b"{":
            if prev in (b"{", b",") and token[:1] == b'"':
                key = token
            elif prev == b":" and key:
                found.keys[key], key = token[:1], b""
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                found.end = match.end()
                break
        prev = token
    return found


def sniff_object(text: bytes, key: str = "id") -> str:
    """json, jsonl, one-line (one object, all there is) or long-line (undecided) for `text`
    that starts with `{`; a row names its `key`."""
    value = first_value(text)
    # a row names its key, or a dotted path's first field; plain identifiers (check_key)
    named = f'"{key.split(".")[0]}"'.encode()
    is_document = value.keys.get(b'"data"') == b"[" and named not in value.keys
    if value.newline_inside or is_document:
        return "json"
    if value.end is None:
        return "jsonl" if named in value.keys else "long-line"  # a long row names its key
    return "jsonl" if text[value.end :].strip() else "one-line"

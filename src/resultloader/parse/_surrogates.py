"""Lone surrogate escapes in a JSON document, found before ijson reads them.

`"\\ud800"` is not JSON (RFC 8259 strings are Unicode text), and orjson refuses it on the JSONL
routes; ijson's yajl does not: it stores `?`, joins `"\\ud800\\ud800"` into U+10000, or fails with
a codec error naming nothing. So the document's bytes are checked as they stream to ijson: each
lone surrogate escape becomes `\\ufdd0`, a noncharacter no API writes, and the item holding it
is refused with its number and the same reason as a JSONL line (`LONE_SURROGATE`).
"""

from __future__ import annotations

import re

LONE_SURROGATE = "invalid JSON: a lone surrogate escape (\\ud800-\\udfff) in a string"
MARK = "\ufdd0"
MARK_BYTES = MARK.encode()
_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# an escaped backslash first, so that `\\ud800` (a backslash, then text) is no escape
_ESCAPES = re.compile(rb"\\\\|(" + _HIGH + rb")(" + _LOW + rb")?|(" + _LOW + rb")")
_TAIL = 12  # a surrogate pair's escapes: the most that must be seen at once


def mark_lone_surrogates(data: bytes) -> tuple[bytes, bool]:
    """`data` with each lone surrogate escape replaced by MARK's escape; True if one was."""
    if b"\\ud" not in data and b"\\uD" not in data:
        return data, False
    found = False

    def replace(match: re.Match[bytes]) -> bytes:
        nonlocal found
        if (match[1] and not match[2]) or match[3]:
            found = True
            return b"\\ufdd0"
        return match[0]

    return _ESCAPES.sub(replace, data), found


def safe_cut(data: bytes) -> int:
    """Where `data` may be cut without splitting an escape, a surrogate pair or a run of
    backslashes: the bytes after the cut wait for the next read."""
    cut = data.rfind(b"\\", max(0, len(data) - _TAIL))
    if cut < 0:
        return len(data)
    while True:
        while cut > 0 and data[cut - 1] == 0x5C:  # the start of the run of backslashes
            cut -= 1
        if cut >= 6 and re.fullmatch(_HIGH, data[cut - 6 : cut]):
            cut -= 6  # keep a high escape with the escape after it
            continue
        return cut

"""ijson's errors, in the words a JSONL line with the same fault gets.

yajl's message spans three lines: the error, an excerpt of the text around it, and a caret
under the byte where it stopped. For the faults the differential suite names (a trailing comma,
NaN or Infinity) the excerpt tells which it was, so a document says what a JSONL line says;
anything else keeps yajl's first line.
"""

from __future__ import annotations

import re

from .jsonl import NOT_A_NUMBER

TRAILING_COMMA = "invalid JSON: trailing comma is not allowed"  # orjson's words
_WORD_BEFORE = re.compile(r"[:\[,]\s*(-?[A-Za-z]*)$")
_WORD_AFTER = re.compile(r"[A-Za-z]*")


def ijson_reason(exc: Exception) -> tuple[str, bool]:
    """The reason for ijson's error, and whether it is a JSONL line's reason (one fault that
    the excerpt names) rather than yajl's own words."""
    text = str(exc).strip("\n")
    if text[:2] in ("b'", 'b"'):  # some ijson errors carry the repr of a bytes message
        text = text[2:-1].replace("\\n", "\n")
    lines = text.splitlines()
    if "invalid bytes in UTF8" in text:
        return "invalid UTF-8", True  # a JSONL line's reason
    known = _from_excerpt(lines[1], lines[2]) if len(lines) >= 3 else None
    if known:
        return known, True
    first = lines[0].strip().rstrip(".") if lines else type(exc).__name__
    return f"invalid JSON document: {first}", False


def _from_excerpt(excerpt: str, caret: str) -> str | None:
    # the caret stands on the byte yajl stopped at, or one past it, depending on the error
    for at in (caret.find("^") - 1, caret.find("^")):
        if at >= 0 and (known := _fault_at(excerpt[:at], excerpt[at:])):
            return known
    return None


def _fault_at(before: str, after: str) -> str | None:
    if before.rstrip().endswith(",") and after.lstrip()[:1] in ("]", "}"):
        return TRAILING_COMMA
    word = _WORD_BEFORE.search(before)
    if word:
        after_word = _WORD_AFTER.match(after)
        token = (word[1] + (after_word[0] if after_word else "")).lower()
        if token.startswith(("nan", "inf", "-nan", "-inf")):
            return NOT_A_NUMBER
    return None

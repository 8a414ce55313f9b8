"""One stored text per JSON value, whichever route reads it and whatever else is in the batch.

The fast route stores what DuckDB's JSON writer (yyjson) writes, so that text is the canonical
one, and the Python routes write the same:
- an integer (no `.`, no exponent) as its digits, `-0` as `0`, however long;
- any other number that a double holds exactly as written (`1.50`, `1E23`, `0.1`): the
  double's shortest round-trip digits, laid out as yyjson does: plain between 1e-6 and 1e21
  (`1.5`, `54982200000000000000.0`, `0.000001`), else `1e23`, `1.5e-7` (no `+`);
- a number a double would change (`1e400`, `0.10000000000000000555`, `1e-400`): all the digits
  the source wrote, without the zeros that say nothing, in the same layout (`1E+400` as `1e400`),
  plain too when its digits reach the point (`123456789012345678901234567890.5`);
- in strings, control characters as JSON's short escapes or `\\u001F` (upper-case hex).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_INTEGER = re.compile(r"-?[0-9]+")
HUGE_EXPONENT = "invalid JSON: a number's exponent is beyond 10^18"  # Decimal's limit
# orjson's own spellings: an exponent, which orjson always signs (`1e+23`, `5e-324`; a hex id's
# "5e10" is no number, and sent most LLM answers through the slow substitution), or lower-case
# hex in an escape
_ORJSON_ONLY = re.compile(r"[0-9]e[-+][0-9]|\\u00[01][a-f]")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.]*e[-+]?[0-9]+')
_ESCAPE = re.compile(r"\\(?:u00[01][0-9a-f]|[^u])")


def canonical_number(text: str) -> str:
    """The stored text of the JSON number `text` (valid JSON number syntax)."""
    if _INTEGER.fullmatch(text):
        return "0" if not text.strip("-0") else text
    value = float(text)
    try:
        exact = Decimal(text)
    except InvalidOperation:  # an exponent Python's decimals cannot hold
        raise ValueError(HUGE_EXPONENT) from None
    if value - value == 0 and Decimal(repr(value)) == exact:  # finite, and exactly as written
        return double_text(value)
    return _layout_decimal(exact)


def double_text(value: float) -> str:
    """A finite double as yyjson writes it: the shortest digits that read back as `value`."""
    if value == 0:
        return "-0.0" if str(value)[0] == "-" else "0.0"
    return ("-" if value < 0 else "") + _layout_decimal(Decimal(repr(abs(value))))


def _layout_decimal(value: Decimal) -> str:
    sign, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "-0.0" if sign else "0.0"
    significant = digits.rstrip("0")
    assert isinstance(exponent, int)  # finite: Decimal(text) of a JSON number
    point = len(digits) + exponent  # the value is 0.<significant> times 10^point
    return ("-" if sign else "") + _layout(significant, point)


def _layout(digits: str, point: int) -> str:
    count = len(digits)
    if 0 < point <= max(21, count):  # digits that reach the point are never put in an exponent
        if point >= count:
            return digits + "0" * (point - count) + ".0"
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    rest = f".{digits[1:]}" if count > 1 else ""
    return f"{digits[0]}{rest}e{point - 1}"


def canonical_json(text: str, floats: bool) -> str:
    """orjson's JSON text with its own spellings (lower-case hex escapes, and with `floats`, the
    exponents of the doubles it wrote) written the canonical way. Without `floats` its numbers
    are canonical already (RawNumber). Most texts need nothing: returned as they are after a few
    substring tests (a regex search alone costs 0.15 ms on a 3 KB answer that it does not match)."""
    if "\\u00" not in text and "e+" not in text and "e-" not in text:
        return text
    if _ORJSON_ONLY.search(text) is None:
        return text
    return _TOKENS.sub(_canonical_token if floats else _canonical_string, text)


def _canonical_token(match: re.Match[str]) -> str:
    return _canonical_string(match) if match[0][0] == '"' else double_text(float(match[0]))


def _canonical_string(match: re.Match[str]) -> str:
    token = match[0]
    if token[0] != '"':
        return token
    return _ESCAPE.sub(lambda m: m[0][:2] + m[0][2:].upper(), token)

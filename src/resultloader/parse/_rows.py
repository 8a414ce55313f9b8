"""Turn one parsed JSON object into the row model, exactly.

orjson is the fast decoder, but it turns integers beyond 64 bits into floats and rounds long
decimals. Lines that may hold such numbers are decoded by the standard library instead, keeping
every number's text (`RawNumber`), and written back verbatim with orjson's Fragment.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Context, Decimal
from typing import Any

import orjson

from .._mapping import MISSING, RowMapping, at_path
from .._model import RowBatch
from ._numbers import canonical_json, canonical_number
from ._surrogates import LONE_SURROGATE, mark_lone_surrogates

_STANDARD = ("output", "metadata", "url")
# Numbers a double may not hold exactly: 16 or more digits (and dots) in a row, or a negative
# exponent of 3+ digits (1e-400 would read as 0.0, subnormals lose digits); orjson refuses the
# numbers beyond a double's range, which then go to the exact decoder anyway.
_NUMBERISH = bytes(  # digits and dots as "0", exponents as "e", signs as "-", else " "
    0x30
    if chr(c) in "0123456789."
    else 0x65
    if chr(c) in "eE"
    else 0x2D
    if chr(c) in "+-"
    else 0x20
    for c in range(256)
)
_SIXTEEN_ZEROS = b"0" * 16
_INTEGER = re.compile(r"-?[0-9]+")


class RawNumber(str):
    """A JSON number kept as the text the source wrote."""


def _raw_default(value: Any) -> Any:
    if isinstance(value, RawNumber):  # canonical already (_exact_number)
        return orjson.Fragment(str.__str__(value))
    if isinstance(value, Decimal):  # ijson's numbers
        return orjson.Fragment(
            canonical_number(str(value)) if value.is_finite() else _not_json(value)
        )
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _not_json(value: Decimal) -> str:
    raise ValueError(f"{value} is not valid JSON")


def _big_ints_as_text(value: Any) -> Any:
    """orjson refuses integers beyond 64 bits: turn them into RawNumber, recursively."""
    if isinstance(value, int) and not isinstance(value, bool):
        return RawNumber(value) if abs(value) >= 2**63 else value
    if isinstance(value, dict):
        return {k: _big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_text(v) for v in value]
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _exact_number(text: str) -> RawNumber:
    return RawNumber(canonical_number(text))


_exact_decoder = json.JSONDecoder(
    parse_int=_exact_number, parse_float=_exact_number, parse_constant=_refuse_constant
)


def may_hold_long_numbers(data: bytes) -> bool:
    """A cheap whole-buffer test: could any number here lose precision in a double?"""
    numberish = data.translate(_NUMBERISH)
    return _SIXTEEN_ZEROS in numberish or b"e-000" in numberish


# A run of 16+ digits and dots, with its sign and what follows: a number orjson may change
_LONG_RUN = re.compile(rb"(-?)([0-9.]{16,})([eE]?)")


def line_needs_exact(line: bytes) -> bool:
    """Does this line hold a number orjson would change? Translate and find first (a regex
    on every line costs 3x more), then look at the long runs: an integer of 64 bits, such as
    a 19-digit "snowflake" id up to 2^64-1 or down to -2^63, orjson reads exactly, so those
    lines stay on the fast decoder; 20 digits, a negative 19, or a long fraction do not."""
    if not may_hold_long_numbers(line):
        return False
    if b"e-000" in line.translate(_NUMBERISH):
        return True
    for sign, run, exponent in _LONG_RUN.findall(line):
        if exponent or b"." in run or len(run) > 20:
            return True
        if int(run) > (2**63 if sign else 2**64 - 1):  # orjson's i64 and u64
            return True
    return False


def decode_exact(text: str | bytes) -> Any:
    """Decode JSON keeping every number exactly as written (for lines orjson would round).

    Python's decoder takes a lone surrogate escape, which orjson (whose refusal of a number
    sent the text here) would have refused too: it is refused with orjson's reason."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if "\\u" in text and mark_lone_surrogates(text.encode("utf-8", "surrogatepass"))[1]:
        raise ValueError(LONE_SURROGATE)
    return _exact_decoder.decode(text)


def loads(data: bytes | str) -> Any:
    """orjson.loads, except that orjson's refusal to allocate its parse buffer (which it reports
    as a JSONDecodeError) is a MemoryError: the text is not at fault, and calling it invalid
    would let --on-error skip drop a good row."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "memory" in str(exc).lower():
            raise MemoryError(f"out of memory parsing a JSON text of {len(data)} bytes") from exc
        raise


def to_python(text: str) -> Any:
    """JSON text to plain Python values, exactly: big integers stay int, long decimals Decimal."""
    if not may_hold_long_numbers(text.encode()):
        try:
            return loads(text)
        except orjson.JSONDecodeError:  # a number beyond a double's range, such as 1e400
            pass
    return json.loads(text, parse_float=_float_or_decimal)


def _float_or_decimal(text: str) -> float | Decimal:
    """A float when it holds the number exactly as written, else a Decimal: so 0.5 is a float
    whether or not a long number sits elsewhere in the same row."""
    value = float(text)
    if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
        return value
    return Decimal(text)


NESTED_TOO_DEEPLY = "invalid JSON: nested too deeply"
# orjson writes at most 254 levels (and reads 1024): deeper values are bad rows, whichever
# path reads them (DuckDBSink sends every row that may be this deep through Python).
MAX_DEPTH = 254


def dumps(value: Any, exact: bool) -> str:
    """JSON text of a decoded value; `exact` values may hold RawNumber, Decimal or big ints.

    Raises ValueError(NESTED_TOO_DEEPLY) for a value nested more than MAX_DEPTH levels.
    """
    try:
        if not exact:
            return canonical_json(orjson.dumps(value).decode(), floats=True)
        option = orjson.OPT_PASSTHROUGH_SUBCLASS
        try:
            text = orjson.dumps(value, default=_raw_default, option=option).decode()
            return canonical_json(text, floats=False)
        except orjson.JSONEncodeError as exc:
            if "ecursion" in str(exc):
                raise
            value = _big_ints_as_text(value)
            text = orjson.dumps(value, default=_raw_default, option=option).decode()
            return canonical_json(text, floats=False)
    except (orjson.JSONEncodeError, RecursionError) as exc:
        if isinstance(exc, RecursionError) or "ecursion" in str(exc):
            raise ValueError(NESTED_TOO_DEEPLY) from None
        raise


def key_value(obj: dict[str, Any], key: str) -> Any:
    """The value of the field `key`, or at its dotted path; MISSING where there is none."""
    return at_path(obj, key) if "." in key else obj.get(key, MISSING)


def key_text(value: Any) -> str | None:
    """A key as text: strings as they are, numbers by `number_key`; anything else is no key."""
    if isinstance(value, RawNumber):
        return number_key(str.__str__(value))
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # orjson's float: lines with 16+ digits or 3-digit exponents are decoded exactly, so
        # this number had at most 15 significant digits, which repr gives back by value
        return number_key(repr(value))
    if isinstance(value, Decimal):  # ijson's
        return number_key(str(value))
    return None


def number_key(text: str) -> str:
    """The one text of a numeric id, whatever its spelling: integers as their digits (`-0` as
    `0`; `1e3`, `1000.0` and `1000` as `1000`), others as the shortest decimal of the exact
    value (`1.50` as `1.5`, `2.5e-3` as `0.0025`, `1e-7` as `1E-7`). DuckDB's native insert
    keeps integer ids, which it writes the same way, and leaves the others to Python."""
    if _INTEGER.fullmatch(text):
        return "0" if not text.strip("-0") else text
    value = Decimal(text)
    if value == value.to_integral_value() and value.adjusted() < 1000:
        return str(int(value))
    return str(value.normalize(Context(prec=max(28, len(text)))))  # no rounding


def kind_of(value: Any) -> str:
    """A JSON value's kind, with its article: "an array", "a string", "null", ..."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def add_object(
    batch: RowBatch,
    obj: dict[str, Any],
    key: str,
    seq: int,
    exact: bool,
    index_ids: str | None = None,
    mapping: RowMapping | None = None,
) -> str | None:
    """Append `obj` to `batch` as one row; return the reason it is bad instead, if it is.

    A top-level `key` becomes the id column and leaves `extra`; a dotted path's value is read
    where it is and stays there (`--key response.request_id` keeps `response` whole).

    With `index_ids`, a row without the key gets the id `<index_ids>/<index>`, its index from 0
    (`seq` counts items and lines from 1; a whole document is item 0, index 0).
    With a provider's `mapping`, the id, output and extra are where it says."""
    if mapping is not None:
        return _add_mapped(batch, obj, mapping, seq, exact)
    found = obj.pop(key, MISSING) if "." not in key else at_path(obj, key)
    if found is MISSING and index_ids is not None:
        found = f"{index_ids}/{max(seq - 1, 0)}"
    if found is MISSING:
        return f"no {key!r} field"
    row_id = key_text(found)
    if row_id is None:
        return f"{key!r} must be a string or a number"
    output = obj.pop("output", None)
    metadata = obj.pop("metadata", None)
    url = obj.pop("url", None)
    if url is not None and not isinstance(url, str):
        obj["url"] = url  # keep an odd url in extra rather than lose it
        url = None
    try:
        output_text = None if output is None else dumps(output, exact)
        metadata_text = None if metadata is None else dumps(metadata, exact)
        extra_text = dumps(obj, exact) if obj else None
    except ValueError as exc:  # nested too deeply, or NaN from a JSON document
        return str(exc)
    url_text = str.__str__(url) if url is not None else None
    batch.append(row_id, output_text, metadata_text, url_text, extra_text, seq)
    return None


def _add_mapped(
    batch: RowBatch, obj: dict[str, Any], mapping: RowMapping, seq: int, exact: bool
) -> str | None:
    mapped = mapping.apply(obj)
    if isinstance(mapped, str):
        return mapped
    key_value, output, extra = mapped
    row_id = key_text(key_value)
    if row_id is None:
        return f"{mapping.key!r} must be a string or a number"
    try:
        output_text = None if output is None else dumps(output, exact)
        extra_text = dumps(extra, exact) if extra else None
    except ValueError as exc:
        return str(exc)
    batch.append(row_id, output_text, None, None, extra_text, seq)
    return None

"""The benchmark's shapes of file beside SafetyKit's (generate.rows): each a deterministic
generator of lines (bytes, no newline) for `n` rows and a seed.

- snowflake: SafetyKit-like rows where half hold a 19-digit integer (a social platform's
  64-bit "snowflake" id, up to 2^63-1) inside `output` and `metadata`, with typographic
  punctuation and emoji in the text;
- openai: OpenAI Batch output lines of 1-4 KB (Chat Completions bodies with long answers),
  2% failures: non-2xx bodies, `response: null` with an error (expired), error-file lines;
- exact: SafetyKit-like rows where 5% hold a number no double or 64-bit integer holds (beyond
  64 bits, 1e400, 30-digit decimals): those lines need the exact parser;
- csv: a CSV batch download (id, output and metadata as JSON text, url, two text columns).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator

import orjson

# typographic quotes, dashes, symbols and emoji (escaped: ruff calls them ambiguous in source)
TYPOGRAPHIC = (
    "\u201cquoted\u201d",
    "\u2018single\u2019",
    "\u2014",
    "\u2026",
    "\u00abguillemets\u00bb",
    "\u20ac12",
    "\u2122",
    "\U0001f642",
    "\U0001f680",
    "\U0001f44d\U0001f3fd",
)
PLAIN = ("review", "policy", "listing", "seller", "image", "price", "shipping", "brand", "the")
ANSWER = (
    "The", "request", "asks", "for", "a", "summary", "of", "the", "attached", "document,",
    "which", "describes", "quarterly", "results", "and", "their", "drivers.", "Revenue",
    "grew", "by", "twelve", "percent", "while", "costs", "stayed", "flat;", "the", "margin",
    "improved", "accordingly.", "Key", "risks", "include", "supply", "constraints", "and",
    "currency", "effects.", "In", "short:", "steady", "progress,", "no", "surprises.",
)  # fmt: skip
SNOWFLAKE_LOW, INT64_MAX = 10**18, 2**63 - 1


def _words(rnd: random.Random, pool: tuple[str, ...], count: int) -> str:
    return " ".join(rnd.choices(pool, k=count))


def snowflake_rows(n: int, seed: int = 20240602) -> Iterator[bytes]:
    rnd = random.Random(seed)
    for i in range(n):
        rid = rnd.randrange(i) if i and rnd.random() < 0.01 else i
        row: dict[str, object] = {"id": f"post_{rid:09d}"}
        big = rnd.random() < 0.5
        if rnd.random() < 0.05:
            row["output"] = None
        else:
            text = _words(rnd, PLAIN + TYPOGRAPHIC, 6)
            fields: dict[str, object] = {"title": text, "score": rnd.randrange(10**6)}
            if big:  # 18-19 digits, up to 2^63-1: a 64-bit integer, stored as written
                fields["author_id"] = rnd.randint(SNOWFLAKE_LOW, INT64_MAX)
            row["output"] = {"labels": [{"label": "spam.low_quality"}], "fields": fields}
        if rnd.random() >= 0.30:
            meta: dict[str, object] = {"source": "stream", "batch": rnd.randrange(100)}
            if big:
                meta["post_id"] = rnd.randint(SNOWFLAKE_LOW, INT64_MAX)
            row["metadata"] = meta
        row["url"] = f"https://app.safetykit.com/review/{rid}"
        yield orjson.dumps(row)


def exact_rows(n: int, seed: int = 20240603, twin: bool = False) -> Iterator[bytes]:
    """5% of the lines hold a number only the exact parser keeps (a real reason each). The
    `twin` file has the same rows with an ordinary integer there: all on the fast route."""
    rnd = random.Random(seed)
    for i in range(n):
        rid = rnd.randrange(i) if i and rnd.random() < 0.01 else i
        fields: dict[str, object] = {"title": _words(rnd, PLAIN, 3), "score": rnd.randrange(10**6)}
        if rnd.random() < 0.05:
            kind = rnd.randrange(3)
            if kind == 0:  # beyond 64 bits
                number = str(rnd.randrange(2**64, 10**30))
            elif kind == 1:  # beyond a double's range
                number = "1e400"
            else:  # a 30-digit decimal
                number = f"{rnd.randrange(10**14, 10**15)}.{rnd.randrange(10**15):015d}"
            fields["amount"] = len(number) if twin else orjson.Fragment(number)  # no draw
        row = {
            "id": f"item_{rid:08d}",
            "output": {"labels": [{"label": "fraud.needs_review"}], "fields": fields},
            "metadata": {"source": "ledger", "batch": rnd.randrange(100)},
            "url": f"https://app.safetykit.com/review/{rid}",
        }
        yield orjson.dumps(row)


def exact_twin_rows(n: int) -> Iterator[bytes]:
    return exact_rows(n, twin=True)


def openai_rows(n: int, seed: int = 20240604) -> Iterator[bytes]:
    """OpenAI Batch output (and error-file) lines: 98% answered, 1% a non-2xx body, 0.5%
    `response: null` with an expiry error, 0.5% an error file's line."""
    rnd = random.Random(seed)
    for i in range(n):
        line: dict[str, object] = {"id": f"batch_req_{rnd.getrandbits(96):024x}"}
        line["custom_id"] = f"request-{i}"
        roll = rnd.random()
        if roll < 0.98:
            line["response"] = {
                "status_code": 200,
                "request_id": f"{rnd.getrandbits(128):032x}",
                "body": _completion(rnd),
            }
            line["error"] = None
        elif roll < 0.99:
            line["response"] = {
                "status_code": 400,
                "request_id": f"{rnd.getrandbits(128):032x}",
                "body": {
                    "error": {
                        "message": "This model's maximum context length is 128000 tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            }
            line["error"] = None
        else:
            expired = roll < 0.995
            line["response"] = None
            line["error"] = {
                "code": "batch_expired" if expired else "invalid_request",
                "message": "This request could not be executed before the completion window "
                "expired."
                if expired
                else "The request body is not valid JSON.",
            }
        yield orjson.dumps(line)


def _completion(rnd: random.Random) -> dict[str, object]:
    words = rnd.randrange(100, 470)  # ~0.7-3.4 KB of answer: lines of 1.2-4 KB
    prompt, completion = rnd.randrange(50, 3000), words * 4 // 3
    return {
        "id": f"chatcmpl-{rnd.getrandbits(120):030x}",
        "object": "chat.completion",
        "created": 1711652795 + rnd.randrange(86400),
        "model": rnd.choice(("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06")),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": _words(rnd, ANSWER, words),
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop" if rnd.random() < 0.97 else "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_0ba0d124f1",
    }


CSV_HEADER = ("id", "output", "metadata", "url", "reviewer", "decision")


def csv_rows(n: int, seed: int = 20240605) -> Iterator[bytes]:
    """The header, then `n` records (a record a line: no cell holds a newline)."""
    rnd = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="")
    writer.writerow(CSV_HEADER)
    yield out.getvalue().encode()
    for i in range(n):
        rid = rnd.randrange(i) if i and rnd.random() < 0.01 else i
        output = {
            "labels": [{"label": "spam.low_quality"}] if rnd.random() < 0.5 else [],
            "fields": {"title": _words(rnd, PLAIN, 3), "score": rnd.randrange(10**6)},
        }
        meta = {"batch": rnd.randrange(100)} if rnd.random() >= 0.3 else None
        record = (
            f"row_{rid:08d}",
            orjson.dumps(output).decode() if rnd.random() >= 0.05 else "",
            orjson.dumps(meta).decode() if meta else "",
            f"https://app.safetykit.com/review/{rid}",
            rnd.choice(("ann", "bob", "chloé")),
            rnd.choice(("allow", "block", "review")),
        )
        out.seek(0)
        out.truncate()
        writer.writerow(record)
        yield out.getvalue().encode()

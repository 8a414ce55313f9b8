"""An OpenAI batch output file with typed fields, the typed columns it gives, and the CLI
that loads it, as the typed-column tests use them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def body(n: int, text: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10 * n, "completion_tokens": n, "total_tokens": 11 * n},
    }


OPENAI_LINES = [
    {
        "id": "batch_req_1",
        "custom_id": "r1",
        "response": {"status_code": 200, "request_id": "q1", "body": body(1, "Hello “world” 🙂")},
        "error": None,
    },
    {
        "id": "batch_req_2",
        "custom_id": "r2",
        "response": {
            "status_code": 400,
            "request_id": "q2",
            "body": {
                "error": {
                    "message": "Invalid model 'gpt-5x'",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            },
        },
        "error": None,
    },
    {
        "id": "batch_req_3",
        "custom_id": "r3",
        "response": {"status_code": 200, "request_id": "q3", "body": body(2, "Two", "gpt-4o")},
        "error": None,
    },
    {
        "id": "batch_req_4",
        "custom_id": "r4",
        "response": None,
        "error": {"code": "batch_expired", "message": "not run before the window expired"},
    },
    {
        "id": "batch_req_5",
        "custom_id": "r5",
        "response": None,
        "error": {"code": "batch_cancelled", "message": "the batch was cancelled"},
    },
]


CLI = [sys.executable, "-m", "resultloader"]


# An OpenAI Batch output file and error file, as one job writes them (lines in no order).
EXPECTED = [  # id, status, model, text, finish_reason, in, out, total, error type, message
    ("r1", "succeeded", "gpt-4o-mini", "Hello “world” 🙂", "stop", 10, 1, 11, None, None),
    ("r2", "errored", None, None, None, None, None, None, "invalid_request_error",
     "Invalid model 'gpt-5x'"),
    ("r3", "succeeded", "gpt-4o", "Two", "stop", 20, 2, 22, None, None),
    ("r4", "expired", None, None, None, None, None, None, "batch_expired",
     "not run before the window expired"),
    ("r5", "cancelled", None, None, None, None, None, None, "batch_cancelled",
     "the batch was cancelled"),
]  # fmt: skip
TYPED = (
    "SELECT id, status, model, text, finish_reason, input_tokens, output_tokens, total_tokens,"
    " error_type, error_message FROM results ORDER BY id"
)


def jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def routes(write, lines: list[dict[str, Any]], number: str = "") -> dict[str, Path]:
    """The same rows as JSONL (fast and exact), a JSON array, a `data` document and CSV;
    `number` is written where a line holds the text "NUMBER" (as 1e400, which json cannot)."""

    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False).replace('"NUMBER"', number)

    items = [text(line) for line in lines]
    jsonl_text = "".join(item + "\n" for item in items)
    exact = jsonl_text.replace('"pad": 0', '"pad": 0.10000000000000000555')  # the exact parser
    cells = [text(line.get("output")).replace('"', '""') for line in lines]
    csv_rows = ["id,output,metadata"] + [
        f'{line["id"]},"{cell}",' for line, cell in zip(lines, cells, strict=True)
    ]
    return {
        "jsonl": write("r.jsonl", jsonl_text),
        "exact": write("e.jsonl", exact),
        "array": write("a.json", "[" + ",".join(items) + "]"),
        "data": write("d.json", '{"data": [' + ",".join(items) + "]}"),
        "csv": write("c.csv", "\n".join(csv_rows) + "\n"),
    }

"""An OpenAI batch output file with typed fields, as the typed-column tests load it."""

from __future__ import annotations

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

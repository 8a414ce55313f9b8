"""A fake Bedrock control plane on loopback: GetModelInvocationJob's REST call,
`GET /model-invocation-job/{jobIdentifier}`, answered from scripts (resultloader.testing.FakeApi),
every request checked for a SigV4 signature of the `bedrock` service in the expected region.

boto3 finds it through AWS_ENDPOINT_URL_BEDROCK; the results are on moto's S3 server
(conftest.s3_endpoint), found through AWS_ENDPOINT_URL_S3. Fake credentials only.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from resultloader.testing import FakeApi, Reply, Seen

ACCESS_KEY = "AKIAFAKEFAKEFAKE0001"
SECRET_KEY = "fake-secret-0123456789abcdefghijklmnopqrs"
TOKEN = "fake-session-token-0123456789"
ACCOUNT = "123456789012"
REGION = "us-west-2"  # the ARN's, not the environment's default (us-east-1)
JOB_ID = "abc123def456"
ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{JOB_ID}"
PATH = f"/model-invocation-job/{quote(ARN, safe='')}"
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/\d{8}/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}"
)


class FakeBedrock(FakeApi):
    """`region`: the region every request must be signed for."""

    def __init__(self, region: str = REGION) -> None:
        super().__init__({})
        self.region = region

    def check_key(self, seen: Seen) -> Reply | None:
        headers = {k.lower(): v for k, v in seen.headers.items()}
        found = _SIGV4.fullmatch(headers.get("authorization", ""))
        if (
            found is None
            or found["key"] != ACCESS_KEY
            or found["service"] != "bedrock"
            or found["region"] != self.region
        ):
            return error(403, "InvalidSignatureException", "the signature is not valid")
        return None

    def job(self, *replies: dict[str, Any] | Reply) -> None:
        self.script(PATH, *replies)


def error(status: int, code: str, message: str) -> Reply:
    """An error as Bedrock's REST-JSON protocol sends it."""
    return Reply(status, {"message": message}, {"x-amzn-ErrorType": f"{code}:http://internal"})


def job(status: str, bucket: str, **fields: Any) -> dict[str, Any]:
    """GetModelInvocationJob's answer, times as REST-JSON writes them."""
    return {
        "jobArn": ARN,
        "jobName": "nightly-claims",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/BedrockBatch",
        "status": status,
        "submitTime": "2026-11-20T10:00:00Z",
        "lastModifiedTime": "2026-11-20T11:00:00Z",
        "inputDataConfig": {
            "s3InputDataConfig": {"s3InputFormat": "JSONL", "s3Uri": f"s3://{bucket}/in/"}
        },
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
        "timeoutDurationInHours": 24,
        **fields,
    }

"""AWS calls through boto3 for the Bedrock provider: region and credentials the boto3 way
(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance roles; a Bedrock API key in
AWS_BEARER_TOKEN_BEDROCK), SigV4 signing, retries and endpoints (AWS_ENDPOINT_URL_BEDROCK,
AWS_ENDPOINT_URL_S3) all boto3's. boto3 comes with smart_open[s3]; it is imported only here.

Its failures become PollErrors in this package's words: the code AWS gave, what to check, and
never a credential (boto3 does not echo them; AWS's own message is redacted all the same).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .._errors import PollError
from .._redact import redact

_MANIFEST_BYTES = 1 << 20  # a manifest is a few hundred bytes of counts
_NOT_FOUND = frozenset({"ResourceNotFoundException", "NotFoundException"})
_REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "IncompleteSignature",
    }
)
_BUSY = frozenset({"ThrottlingException", "ServiceUnavailableException", "TooManyRequests"})
# one boto3 client per API client (one ingest): made once, not on every status check
_CLIENTS: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
CREDENTIALS = (
    "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_BEARER_TOKEN_BEDROCK)"
)


def bedrock_client(owner: object, region: str | None, endpoint: str | None) -> Any:
    """boto3's `bedrock` client for one ingest (`owner`, its API client), in `region` (None:
    boto3's default), at `endpoint` (None: boto3's, AWS_ENDPOINT_URL_BEDROCK included)."""
    with _LOCK:
        found = _CLIENTS.get(owner)
        if found is None:
            found = _session().client(
                "bedrock", region_name=region, endpoint_url=endpoint, config=_config()
            )
            _CLIENTS[owner] = found
        return found


def _session() -> Any:
    import boto3  # type: ignore[import-untyped]  # smart_open[s3] brings it

    return boto3.session.Session()  # its own: boto3's default session is not thread-safe


def _config() -> Any:
    from botocore.config import Config  # type: ignore[import-untyped]

    # throttling and server errors retried with backoff (boto3's standard mode), about as
    # long as the other providers' status calls
    return Config(
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=10,
        read_timeout=60,
        user_agent_appid="resultloader",
    )


def get_job(client: Any, job_id: str, what: str) -> dict[str, Any]:
    """GetModelInvocationJob's answer as JSON would hold it (times as ISO 8601 text, as the AWS
    CLI prints them, so that a saved status reads the same)."""
    try:
        answer = client.get_model_invocation_job(jobIdentifier=job_id)
    except Exception as exc:
        raise poll_error(exc, what) from None
    answer.pop("ResponseMetadata", None)
    return {k: _plain(v) for k, v in answer.items()}


def read_manifest(bucket: str, key: str) -> dict[str, Any] | None:
    """The job's `manifest.json.out` (record and token counts), or None when there is none or
    it cannot be read: the counts are shown, they decide nothing."""
    import orjson

    try:
        body = _session().client("s3", config=_config()).get_object(Bucket=bucket, Key=key)
        found = orjson.loads(body["Body"].read(_MANIFEST_BYTES))
    except Exception:
        return None
    return found if isinstance(found, dict) else None


def poll_error(exc: BaseException, what: str) -> PollError:
    """A boto3 failure in this package's words."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, NoCredentialsError):
        return PollError(f"{what}: no AWS credentials found: set {CREDENTIALS}")
    if isinstance(exc, NoRegionError):
        return PollError(f"{what}: no AWS region: give the job's ARN (it names its region)")
    if isinstance(exc, ClientError):
        return _refused(exc.response, what)
    if isinstance(exc, BotoCoreError):
        return PollError(f"{what}: cannot reach Bedrock: {type(exc).__name__}")
    return PollError(f"{what}: {type(exc).__name__}")


def _refused(response: Mapping[str, Any], what: str) -> PollError:
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    said = redact(" ".join(str(error.get("Message") or "").split()))[:300]
    detail = f": {said}" if said else ""
    if code in _NOT_FOUND or status == 404:
        return PollError(f"{what}: not found ({code or 'HTTP 404'}); check the ARN{detail}")
    if code in _REFUSED or status == 401:
        return PollError(f"{what}: AWS refused the credentials ({code}); check {CREDENTIALS}")
    if code == "AccessDeniedException" or status == 403:
        return PollError(
            f"{what}: these AWS credentials may not read it ({code or 'HTTP 403'}; "
            "bedrock:GetModelInvocationJob is needed)"
        )
    if code in _BUSY or (isinstance(status, int) and status >= 500):
        return PollError(f"{what}: {code or f'HTTP {status}'}, still after retrying; try later")
    return PollError(f"{what}: {code or f'HTTP {status}'}{detail}")


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

"""AWS Bedrock batch inference: `GetModelInvocationJob` (boto3's `bedrock` client: SigV4,
region and credentials the boto3 way; the region is the one the job's ARN names).

A job writes one `{input file}.out` per input file under `{s3Uri}/{jobId}/` (the output
location's `s3Uri`, the ARN's last segment), plus `manifest.json.out` with its record and token
counts. Every `.jsonl.out` there is read from S3 (smart_open; `AWS_ENDPOINT_URL_S3` for another
endpoint) in name order as one load. A line is `{recordId, modelInput, modelOutput}` or `{recordId,
modelInput, error: {errorCode, errorMessage}}`: `id` = `recordId`, `output` = `modelOutput`,
`error` kept in `extra`. `modelInput` is left out: it is the request the user wrote, under the
same recordId in their own input file, and can be far larger than the answer (documents,
base64 images). The manifest's counts, once the job has ended, go in the status payload as
`outputManifest` and show beside the status.

`PartiallyCompleted` (its timeout ran out before every record was processed) is an expired job
with partial results, as OpenAI's `expired` batch: what it wrote loads with `--partial`, and
the ledger says `PartiallyCompleted (partial)`. So do `Stopped` and `Expired` jobs, unless the
status says no record was processed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .._columns import Column
from .._errors import ResolveError
from .._mapping import RowMapping
from . import _aws
from .base import Client, Job, Payload, Provider, State, quoted, register
from .location import Download, Location, as_count

MAPPING = RowMapping(key="recordId", output="modelOutput", keep=("error",))
# Anthropic Claude's Messages bodies, Amazon Nova's (and the Converse API's), Meta Llama's,
# Amazon Titan Text's, Mistral's and the OpenAI-compatible models' (gpt-oss)
COLUMNS = (
    Column("status", sql="CASE WHEN output IS NOT NULL THEN 'succeeded' ELSE 'errored' END"),
    Column("model", paths=("output.model",)),
    Column(
        "text",
        paths=(
            "output.content[*].text",
            "output.output.message.content[*].text",
            "output.generation",
            "output.results[0].outputText",
            "output.outputs[*].text",
            "output.choices[0].message.content",
        ),
    ),
    Column(
        "finish_reason",
        paths=(
            "output.stop_reason",
            "output.stopReason",
            "output.results[0].completionReason",
            "output.outputs[0].stop_reason",
            "output.choices[0].finish_reason",
        ),
    ),
    Column(
        "input_tokens",
        "bigint",
        (
            "output.usage.input_tokens",
            "output.usage.inputTokens",
            "output.prompt_token_count",
            "output.inputTextTokenCount",
            "output.usage.prompt_tokens",
        ),
    ),
    Column(
        "output_tokens",
        "bigint",
        (
            "output.usage.output_tokens",
            "output.usage.outputTokens",
            "output.generation_token_count",
            "output.results[0].tokenCount",
            "output.usage.completion_tokens",
        ),
    ),
    Column(
        "total_tokens",
        "bigint",
        sql="""coalesce(TRY_CAST(output->>'$.usage.totalTokens' AS BIGINT),
            TRY_CAST(output->>'$.usage.total_tokens' AS BIGINT),
            TRY_CAST(coalesce(output->>'$.usage.input_tokens', output->>'$.prompt_token_count',
                output->>'$.inputTextTokenCount') AS BIGINT)
            + TRY_CAST(coalesce(output->>'$.usage.output_tokens',
                output->>'$.generation_token_count', output->>'$.results[0].tokenCount')
                AS BIGINT))""",
    ),
    Column("error_type", paths=("extra.error.errorCode",)),
    Column("error_message", paths=("extra.error.errorMessage",)),
)
# an ARN (its region, its id), or the id alone, as GetModelInvocationJob takes them
_ARN = re.compile(
    r"(?:arn:aws(?:-[^:]+)?:bedrock:(?P<region>[a-z0-9-]{1,20}):[0-9]{12}:"
    r"model-invocation-job/)?(?P<id>[a-z0-9]{12})"
)
# the status's record counts, and the manifest's, in the words the status line shows
_COUNTS = {
    "totalRecordCount": "total",
    "processedRecordCount": "processed",
    "successRecordCount": "succeeded",
    "errorRecordCount": "errored",
    "inputTokenCount": "input_tokens",
    "outputTokenCount": "output_tokens",
}
MANIFEST = "outputManifest"


@register
class BedrockBatch(Provider):
    name: ClassVar[str] = "bedrock-batch"
    brand: ClassVar[str] = "Bedrock batch inference"
    title: ClassVar[str] = (
        "An AWS Bedrock batch inference job: its .jsonl.out files on S3, keyed by recordId."
    )
    base_url: ClassVar[str] = "https://bedrock.{region}.amazonaws.com"
    # boto3 reads these itself; a Bedrock API key is scrubbed from errors like any key
    key_env: ClassVar[str] = "AWS_BEARER_TOKEN_BEDROCK"
    base_url_env: ClassVar[str] = "AWS_ENDPOINT_URL_BEDROCK"
    auth_header: ClassVar[str] = "Authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    job_flag: ClassVar[str] = "--job-arn"
    job_help: ClassVar[str] = (
        "The job's ARN (arn:aws:bedrock:REGION:ACCOUNT:model-invocation-job/ID), or its id."
    )
    partial_results: ClassVar[bool] = True
    mapping: ClassVar[RowMapping | None] = MAPPING
    result_keys: ClassVar[tuple[frozenset[str], ...]] = (
        frozenset({"recordId", "modelOutput"}),
        frozenset({"recordId", "modelInput"}),
    )
    columns: ClassVar[tuple[Column, ...]] = COLUMNS
    # jobs are queued, then take hours: every 30 s at first, backing off to 5 minutes
    poll_floor: ClassVar[float] = 30.0
    poll_cap: ClassVar[float] = 300.0
    expired_hint: ClassVar[str] = (
        "its timeout ran out before every record was processed (Expired: before it started); "
        "submit the rest again"
    )
    stale_link_hint: ClassVar[str] = "check the S3 permissions of these credentials"
    states: ClassVar[dict[str, State]] = {
        "submitted": "running",
        "validating": "running",
        "scheduled": "running",
        "inprogress": "running",
        "stopping": "running",
        "completed": "succeeded",
        "partiallycompleted": "expired",
        "failed": "failed",
        "stopped": "cancelled",
        "expired": "expired",
    }

    @property
    def credentials_help(self) -> str:
        return (
            "AWS credentials are boto3's: AWS_PROFILE, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, SSO or an instance role (or a Bedrock API key in "
            "$AWS_BEARER_TOKEN_BEDROCK for the status; S3 needs the others). The region is the "
            "ARN's; $AWS_ENDPOINT_URL_S3 points the results' reads elsewhere."
        )

    def job(
        self, job_id: str, namespace: str | None = None, params: Mapping[str, str] | None = None
    ) -> Job:
        found = super().job(job_id, namespace, params)
        if not _ARN.fullmatch(found.id):
            raise ValueError(
                f"{self.name}: {found.id!r} is not a batch inference job's ARN "
                "(arn:aws:bedrock:REGION:ACCOUNT:model-invocation-job/ID) or id"
            )
        return found

    def job_path(self, job: Job) -> str:
        return f"/model-invocation-job/{quoted(job.id)}"

    def job_from_payload(self, payload: Payload) -> Job | None:
        value = payload.get("jobArn")
        return Job(value) if isinstance(value, str) and value else None

    def fetch_status(self, client: Client, job: Job) -> dict[str, Any]:
        """The job's status through boto3; once it has ended, with its output's manifest."""
        what = self.describe(job)
        # the base URL given (--base-url, AWS_ENDPOINT_URL_BEDROCK), else boto3's endpoint
        endpoint = None if client.base_url == self.base_url else client.base_url
        bedrock = _aws.bedrock_client(client, _region(job.id), endpoint)
        payload = _aws.get_job(bedrock, job.id, what)
        if self.state(payload) != "running":
            manifest = _manifest(payload, job.id)
            if manifest is not None:
                payload[MANIFEST] = manifest
        return payload

    def counts(self, payload: Payload) -> dict[str, int] | None:
        manifest = payload.get(MANIFEST)
        found = {**payload, **(manifest if isinstance(manifest, Mapping) else {})}
        counts = {ours: as_count(found.get(theirs)) for theirs, ours in _COUNTS.items()}
        return {k: v for k, v in counts.items() if v is not None} or None

    def can_refresh(self, client: Client, download: Download) -> bool:
        return False  # S3 objects read with the caller's credentials: no link to renew

    def locate(
        self, payload: Payload, what: str, job_id: str | None, items_path: str | None
    ) -> Location:
        return self._outputs(payload, what, job_id)

    def partial_location(self, payload: Payload, what: str) -> Download | None:
        counts = self.counts(payload) or {}
        if self.raw_status(payload).lower() == "failed" or counts.get("processed") == 0:
            return None  # a failed job's message says why; none processed: nothing was written
        return self._outputs(payload, what, None)

    def _outputs(self, payload: Payload, what: str, job_id: str | None) -> Download:
        """Every `.jsonl.out` under `{s3Uri}/{jobId}/`, as one load."""
        prefix = _output_prefix(payload, what, job_id)
        total = (self.counts(payload) or {}).get("total")
        return Download(f"{prefix}**/*.jsonl.out", "jsonl", count=total, mapping=MAPPING)


def _region(job_id: str) -> str | None:
    found = _ARN.fullmatch(job_id)
    return found.group("region") if found else None


def _output_prefix(payload: Payload, what: str, job_id: str | None) -> str:
    """`s3://bucket/out/{jobId}/`, from the status's output location and the job's ARN."""
    config = payload.get("outputDataConfig")
    s3 = config.get("s3OutputDataConfig") if isinstance(config, Mapping) else None
    uri = s3.get("s3Uri") if isinstance(s3, Mapping) else None
    if not isinstance(uri, str) or urlsplit(uri).scheme.lower() != "s3" or not urlsplit(uri).netloc:
        raise ResolveError(
            f"{what}: the status has no s3:// output location "
            "(outputDataConfig.s3OutputDataConfig.s3Uri)"
        )
    if re.search(r"[*?]", uri):
        raise ResolveError(f"{what}: the output location {uri!r} has * or ? in it: not read")
    arn = payload.get("jobArn") or job_id
    found = _ARN.fullmatch(arn) if isinstance(arn, str) else None
    if found is None:
        raise ResolveError(f"{what}: the status names no job ARN (jobArn)")
    return f"{uri.rstrip('/')}/{found.group('id')}/"


def _manifest(payload: Payload, job_id: str) -> dict[str, Any] | None:
    try:
        prefix = _output_prefix(payload, "", job_id)
    except ResolveError:
        return None  # resolving the payload says what is wrong with it
    parts = urlsplit(prefix + "manifest.json.out")
    return _aws.read_manifest(parts.netloc, parts.path.lstrip("/"))

"""Azure OpenAI Batch: OpenAI's batches on an Azure resource, `GET
{endpoint}/openai/batches/{id}?api-version=...` with `api-key: <AZURE_OPENAI_API_KEY>`, or an
Entra ID token (`AZURE_OPENAI_AD_TOKEN`) sent as `Authorization: Bearer`.

The batch, its statuses and its output and error files are OpenAI's (the `openai` SDK's
`AzureOpenAI` client reads them as its own), so are the lines, the row mapping and the typed
columns. Files are read through the resource's Files API, `{endpoint}/openai/files/{id}/content`,
with the same api-version and key. `--api-version v1` uses the v1 API instead
(`{endpoint}/openai/v1/...`, no api-version parameter). A cancelled batch returns the work it
completed: loaded with `--partial`, as OpenAI's.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import quote

from .base import Credential, Job, Listing, Option, register
from .openai import OpenAIBatch

# the GA version of the classic API's batches (the `openai` SDK's Azure examples use it)
API_VERSION = "2024-10-21"
_VERSION = re.compile(r"v1|\d{4}-\d{2}-\d{2}(-preview)?")


@register
class AzureOpenAIBatch(OpenAIBatch):
    name: ClassVar[str] = "azure-openai-batch"
    brand: ClassVar[str] = "Azure OpenAI Batch"
    title: ClassVar[str] = "An Azure OpenAI Batch: its output and error files, keyed by custom_id."
    base_url: ClassVar[str] = "https://{resource}.openai.azure.com"
    key_env: ClassVar[str] = "AZURE_OPENAI_API_KEY"
    base_url_env: ClassVar[str] = "AZURE_OPENAI_ENDPOINT"
    auth_header: ClassVar[str] = "api-key"
    auth_prefix: ClassVar[str] = ""
    other_credentials: ClassVar[tuple[Credential, ...]] = (
        Credential("AZURE_OPENAI_AD_TOKEN", "Authorization", "Bearer "),
    )
    job_help: ClassVar[str] = "The batch's id (batch_...)."
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "--api-version",
            "api_version",
            "The Azure OpenAI API version (v1: the v1 API, without one).",
            API_VERSION,
            "VERSION",
        ),
    )
    # its lines are OpenAI's: a load without --as suggests openai-batch, whose mapping is this
    result_keys: ClassVar[tuple[frozenset[str], ...]] = ()
    listing: ClassVar[Listing | None] = None  # (its list needs the api-version too)

    def api_base(self, job: Job, given: str | None) -> str:
        _version(job)  # refused before any request
        if not given:
            raise ValueError(
                f"{self.name}: give the resource's endpoint (https://NAME.openai.azure.com) "
                f"as --base-url or in ${self.base_url_env}"
            )
        return given.rstrip("/").removesuffix("/openai")

    def api_path(self, path: str, job: Job) -> str:
        version = _version(job)
        if version == "v1":
            return f"/openai/v1{path}"
        glue = "&" if "?" in path else "?"
        return f"/openai{path}{glue}api-version={quote(version)}"


def _version(job: Job) -> str:
    version = job.params.get("api_version") or API_VERSION
    if not _VERSION.fullmatch(version):
        raise ValueError(
            f"azure-openai-batch: --api-version is YYYY-MM-DD[-preview] or v1, not {version!r}"
        )
    return version

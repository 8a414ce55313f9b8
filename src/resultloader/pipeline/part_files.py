"""Where parts are kept between the workers that make them and the writer that replays them:
a directory every machine sees, or an s3:// prefix (read and written with boto3)."""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any
from urllib.parse import urlsplit


def fetch(path: str, into: str) -> str:
    """A local path to read the part at `path` from (downloaded into `into` if on S3)."""
    if not path.startswith("s3://"):
        return path
    local = os.path.join(into, path.rsplit("/", 1)[-1])
    bucket, key = _bucket_key(path)
    _s3().download_file(bucket, key, local)
    return local


def put(local: str, path: str) -> None:
    if path.startswith("s3://"):
        bucket, key = _bucket_key(path)
        _s3().upload_file(local, bucket, key)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(local, path)


def remove(run: str) -> None:
    """The run's parts, on S3 or on disk."""
    if not run.startswith("s3://"):
        shutil.rmtree(run, ignore_errors=True)
        return
    bucket, prefix = _bucket_key(run)
    client = _s3()
    with contextlib.suppress(Exception):  # the parts' leftovers are not worth a failed load
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def _bucket_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def _s3() -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3")

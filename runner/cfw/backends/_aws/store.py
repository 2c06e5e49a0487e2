"""Heartbeats and the guard's record in S3 (cfw.core.heartbeat.HeartbeatStore).

The boto3 client is passed in: nothing here imports boto3 or botocore, so this file is
zipped into the guard's Lambda beside cfw.core.heartbeat (cfw.backends._aws.guard_lambda).
last_modified is S3's own clock (LastModified), which the guard trusts over the runner's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cfw.core.heartbeat import ObjectInfo

MISSING = ("NoSuchKey", "404", "NotFound")


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix"); the prefix may be ""."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValueError(f"{url!r} is not an S3 URL (s3://bucket/prefix)")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


class S3Store:
    """Small objects by key in one bucket. get of a missing key is None; delete of one is
    no error (S3 says so itself); list pages through ListObjectsV2."""

    def __init__(self, s3: Any, bucket: str, *, page_size: int = 1000):
        self.s3 = s3
        self.bucket = bucket
        self.page_size = page_size

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def get(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.ClientError as exc:
            if _code(exc) in MISSING:
                return None
            raise

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        found = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        for page in pages:
            for item in page.get("Contents", []):
                found.append(ObjectInfo(item["Key"], _utc(item["LastModified"])))
        return sorted(found, key=lambda o: o.key)


def _code(exc: Any) -> str:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

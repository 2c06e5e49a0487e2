"""Heartbeats and the guard's record in the environment's GCS bucket
(cfw.core.heartbeat.HeartbeatStore), through google-cloud-storage (extra `gcp`).

Under the bucket's root, as every store lays them out:

    gs://<bucket>/.cfw/runs/<run id>.json   one per active run
    gs://<bucket>/.cfw/guard.json           the guard's record

The bucket root, not a run's storage prefix (gs://<bucket>/<workflow folder>): `cfw cancel`
and `cfw guard --once` from any working directory must see every run of the environment.
The runner already writes there (sources and files, with the user's credentials), so no
permission is added; the bucket's lifecycle rule (bucket_retention_days) never reaches an
active run's heartbeat, which is rewritten every minute.

last_modified is the object's own ``updated`` time (GCS's clock, which the guard trusts
over the runner's); list follows the page tokens (page_size objects a page).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cfw.backends.sdk import require
from cfw.core.errors import UserError, WorkFailed
from cfw.core.heartbeat import ObjectInfo

api_exceptions = require("google.api_core.exceptions", "gcp")
auth_exceptions = require("google.auth.exceptions", "gcp")

PAGE_SIZE = 1000  # GCS's own maximum for objects.list


@contextlib.contextmanager
def _api(what: str, bucket: str) -> Iterator[None]:
    """GCS errors as one-line cfw errors. A missing object is the caller's to handle
    inside; a 404 that reaches here is the bucket's."""
    try:
        yield
    except api_exceptions.NotFound as exc:
        raise UserError(
            f"{what}: bucket {bucket} does not exist",
            "check the environment with `cfw status NAME`; `cfw up NAME` creates the bucket",
        ) from exc
    except (api_exceptions.Forbidden, api_exceptions.Unauthorized) as exc:
        raise UserError(
            f"{what} in bucket {bucket}: permission denied ({_first_line(exc.message)})",
            f"your account needs roles/storage.objectAdmin on gs://{bucket} "
            "(it writes the workflow's files there too)",
        ) from exc
    except auth_exceptions.DefaultCredentialsError as exc:
        raise UserError(
            f"{what} in bucket {bucket}: no Google Cloud credentials",
            "run `gcloud auth application-default login`",
        ) from exc
    except api_exceptions.GoogleAPICallError as exc:
        raise WorkFailed(f"{what} in bucket {bucket}: {_first_line(exc.message)}") from exc


class GcsStore:
    """Small objects by key in one bucket. get of a missing key is None; delete of one is
    no error; list pages through objects.list."""

    def __init__(self, client: Any, bucket: str, *, page_size: int = PAGE_SIZE):
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.page_size = page_size
        self.pages = 0  # list pages read, for tests

    def put(self, key: str, body: bytes) -> None:
        with _api(f"writing {key}", self.bucket_name):
            self.bucket.blob(key).upload_from_string(body, content_type="application/json")

    def get(self, key: str) -> bytes | None:
        with _api(f"reading {key}", self.bucket_name):
            try:
                return self.bucket.blob(key).download_as_bytes()
            except api_exceptions.NotFound:
                return None

    def delete(self, key: str) -> None:
        with (
            _api(f"deleting {key}", self.bucket_name),
            contextlib.suppress(api_exceptions.NotFound),
        ):
            self.bucket.blob(key).delete()

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under prefix; none in a bucket that is gone (a `cfw down` run again
        after the bucket was destroyed must not stop at its heartbeats)."""
        found = []
        with _api(f"listing {prefix or '/'}", self.bucket_name):
            blobs = self.client.list_blobs(
                self.bucket_name, prefix=prefix, page_size=self.page_size
            )
            try:
                for page in blobs.pages:
                    self.pages += 1
                    for blob in page:
                        found.append(ObjectInfo(blob.name, _utc(blob.updated)))
            except api_exceptions.NotFound:
                return []
        return sorted(found, key=lambda o: o.key)


def gcs_store(project: str, bucket: str) -> GcsStore:
    """The store in ``bucket``, with Application Default Credentials (or, with
    STORAGE_EMULATOR_HOST set, an emulator's anonymous access)."""
    storage = require("google.cloud.storage", "gcp")
    with _api("opening the heartbeat store", bucket):
        return GcsStore(storage.Client(project=project), bucket)


def _first_line(text: str | None) -> str:
    return (text or "error").strip().splitlines()[0][:200] if text else "error"


def _utc(value: datetime | None) -> datetime:
    if value is None:  # every listed object has its time; never seen
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

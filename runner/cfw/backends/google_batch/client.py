"""The Google Cloud calls of a run: Batch, Cloud Logging, Secret Manager.

Every call goes through the official GAPIC clients (google-cloud-batch, google-cloud-logging,
google-cloud-secret-manager), made lazily with Application Default Credentials; tests give
clients bound to a local gRPC server instead. API errors become cfw errors here, and
``calls`` counts the methods used (one ``list_jobs`` per status cycle, however many pages).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cfw.backends.sdk import require
from cfw.core.errors import UserError, WorkFailed

api_exceptions = require("google.api_core.exceptions", "gcp")
auth = require("google.auth", "gcp")
auth_exceptions = require("google.auth.exceptions", "gcp")
auth_requests = require("google.auth.transport.requests", "gcp")
batch_v1 = require("google.cloud.batch_v1", "gcp")
duration_pb2 = require("google.protobuf.duration_pb2", "gcp")


def _logging_v2() -> Any:
    """Cloud Logging and Secret Manager are imported where a run uses them: the guard's
    function lists and deletes jobs only, and is zipped without them (_google/guard_zip)."""
    return require("google.cloud.logging_v2.services.logging_service_v2", "gcp")


def _secretmanager_v1() -> Any:
    return require("google.cloud.secretmanager_v1", "gcp")


CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
PAGE_SIZE = 500
LOG_LINES = 5000
SECRET_TTL_S = 30 * 86400  # a safety net: close() deletes a run's secrets long before


@contextlib.contextmanager
def api(what: str) -> Iterator[None]:
    """Google API errors as one-line cfw errors."""
    try:
        yield
    except api_exceptions.PermissionDenied as exc:
        raise UserError(
            f"{what}: permission denied ({exc.message})",
            "your account needs roles/batch.jobsEditor, roles/secretmanager.admin "
            "and roles/iam.serviceAccountUser on the job service account",
        ) from exc
    except auth_exceptions.DefaultCredentialsError as exc:
        raise UserError(
            f"{what}: no Google Cloud credentials", "run `gcloud auth application-default login`"
        ) from exc
    except api_exceptions.GoogleAPICallError as exc:
        code = exc.code.name if exc.code else "error"
        raise WorkFailed(f"{what}: {code}: {exc.message}") from exc
    except api_exceptions.RetryError as exc:
        raise WorkFailed(f"{what}: gave up retrying: {exc.cause}") from exc


class Clients:
    """The SDK clients of one project and region, made on first use."""

    def __init__(
        self,
        project: str,
        region: str,
        *,
        batch: Any = None,
        logging: Any = None,
        secrets: Any = None,
        http_get: Callable[[str], int] | None = None,
    ):
        self.project, self.region = project, region
        self._batch, self._logging, self._secrets = batch, logging, secrets
        self._http_get = http_get
        self.calls: Counter[str] = Counter()

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def batch(self) -> Any:
        if self._batch is None:
            self._batch = batch_v1.BatchServiceClient()
        return self._batch

    @property
    def logging(self) -> Any:
        if self._logging is None:
            self._logging = _logging_v2().LoggingServiceV2Client()
        return self._logging

    @property
    def secrets(self) -> Any:
        if self._secrets is None:
            self._secrets = _secretmanager_v1().SecretManagerServiceClient()
        return self._secrets

    # -- Batch ------------------------------------------------------------------------------
    def create_job(self, request: Any) -> Any:
        """Create a job; one that already exists (a retried submission) is returned as is."""
        self.calls["create_job"] += 1
        with api(f"creating Batch job {request.job_id}"):
            try:
                return self.batch.create_job(request=request)
            except api_exceptions.AlreadyExists:
                return self.batch.get_job(name=f"{request.parent}/jobs/{request.job_id}")

    def get_job(self, name: str) -> Any | None:
        self.calls["get_job"] += 1
        with api(f"reading Batch job {name}"):
            try:
                return self.batch.get_job(name=name)
            except api_exceptions.NotFound:
                return None

    def list_jobs(self, filter_: str) -> list[Any]:
        """Every job that matches the filter: one call, the SDK follows the page tokens."""
        self.calls["list_jobs"] += 1
        request = batch_v1.ListJobsRequest(parent=self.parent, filter=filter_, page_size=PAGE_SIZE)
        with api("listing Batch jobs"):
            return list(self.batch.list_jobs(request=request))

    def delete_job(self, name: str, reason: str) -> bool:
        """Delete (and so cancel) a job; False when it was already gone."""
        self.calls["delete_job"] += 1
        with api(f"deleting Batch job {name}"):
            try:
                self.batch.delete_job(request={"name": name, "reason": reason})
            except api_exceptions.NotFound:
                return False
        return True

    def count_jobs(self, env_id: str) -> Counter[str]:
        return Counter(job.status.state.name for job in self.list_jobs(f'labels.cfw-id="{env_id}"'))

    # -- Cloud Logging ----------------------------------------------------------------------
    def task_log(self, job_uid: str, limit: int | None = None) -> list[str]:
        """The newest ``limit`` lines the job's task wrote (Batch's batch_task_logs)."""
        self.calls["list_log_entries"] += 1
        limit = limit or LOG_LINES
        log_filter = (
            f'logName="projects/{self.project}/logs/batch_task_logs" AND labels.job_uid="{job_uid}"'
        )
        request = {
            "resource_names": [f"projects/{self.project}"],
            "filter": log_filter,
            "order_by": "timestamp desc",
            "page_size": min(limit, 1000),
        }
        lines: list[str] = []
        with api("reading the job's log from Cloud Logging"):
            for entry in self.logging.list_log_entries(request=request):
                text = entry.text_payload or (
                    str(dict(entry.json_payload)) if entry.json_payload else ""
                )
                lines.append(text.rstrip("\n"))
                if len(lines) >= limit:
                    break
        return lines[::-1]

    # -- Secret Manager ---------------------------------------------------------------------
    def put_secret(self, secret_id: str, value: str, labels: Mapping[str, str]) -> str:
        """Create the secret (or add a version to it); return its resource name."""
        name = f"projects/{self.project}/secrets/{secret_id}"
        secretmanager_v1 = _secretmanager_v1()
        secret = secretmanager_v1.Secret(
            replication=secretmanager_v1.Replication(
                automatic=secretmanager_v1.Replication.Automatic()
            ),
            labels=dict(labels),
            ttl=duration_pb2.Duration(seconds=SECRET_TTL_S),
        )
        with api(f"storing secret {secret_id} in Secret Manager"):
            self.calls["create_secret"] += 1
            with contextlib.suppress(api_exceptions.AlreadyExists):  # an earlier attempt made it
                self.secrets.create_secret(
                    request={
                        "parent": f"projects/{self.project}",
                        "secret_id": secret_id,
                        "secret": secret,
                    }
                )
            self.calls["add_secret_version"] += 1
            payload = secretmanager_v1.SecretPayload(data=value.encode())
            self.secrets.add_secret_version(request={"parent": name, "payload": payload})
        return name

    def delete_secret(self, name: str) -> None:
        self.calls["delete_secret"] += 1
        with api(f"deleting secret {name}"), contextlib.suppress(api_exceptions.NotFound):
            self.secrets.delete_secret(request={"name": name})

    def list_secrets(self, filter_: str) -> list[str]:
        self.calls["list_secrets"] += 1
        with api("listing secrets"):
            return [
                s.name
                for s in self.secrets.list_secrets(
                    request={"parent": f"projects/{self.project}", "filter": filter_}
                )
            ]

    # -- plain REST reads (what the SDKs above do not cover) --------------------------------
    def exists(self, url: str) -> bool:
        self.calls["http_get"] += 1
        if self._http_get is None:
            credentials, _ = auth.default(scopes=[CLOUD_PLATFORM])
            session = auth_requests.AuthorizedSession(credentials)
            self._http_get = lambda u: session.get(u, timeout=30).status_code
        status = self._http_get(url)
        if status not in (200, 404):
            raise WorkFailed(f"GET {url} answered HTTP {status}")
        return status == 200

    def close(self) -> None:
        for client in (self._batch, self._logging, self._secrets):
            transport = getattr(client, "transport", None)
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()

"""The Google Cloud calls of the google-batch kind: Batch, Cloud Logging, Secret Manager.

Every call goes through the official GAPIC clients (google-cloud-batch, google-cloud-logging,
google-cloud-secret-manager), made lazily with Application Default Credentials; tests give
clients bound to a local gRPC server instead. API errors become cfw errors here, and
``calls`` counts the methods used (one ``list_jobs`` per status cycle, however many pages).
"""

from __future__ import annotations

import contextlib
import importlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cfw.core.errors import CfwError, UserError, WorkFailed, missing_sdk

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
PAGE_SIZE = 500
LOG_LINES = 5000
SECRET_TTL_S = 30 * 86400  # a safety net: close() deletes a run's secrets long before
FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED"}


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_sdk(package, "gcp") from exc


def check_credentials(environ: Mapping[str, str]) -> None:
    """Application Default Credentials must exist (no network call is made)."""
    auth = _import("google.auth", "google-auth")
    exceptions = _import("google.auth.exceptions", "google-auth")
    try:
        auth.default(scopes=[CLOUD_PLATFORM])
    except exceptions.DefaultCredentialsError as exc:
        key_file = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if key_file:
            detail = " ".join(str(exc).split())
            raise UserError(
                f"GOOGLE_APPLICATION_CREDENTIALS={key_file} is not usable: {detail}",
                "point it at a service account key file, or unset it and run "
                "`gcloud auth application-default login`",
            ) from exc
        raise UserError(
            "no Google Cloud credentials found (Application Default Credentials)",
            "run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
        ) from exc


@contextlib.contextmanager
def api(what: str) -> Iterator[None]:
    """Google API errors as one-line cfw errors."""
    core = _import("google.api_core.exceptions", "google-api-core")
    auth_exc = _import("google.auth.exceptions", "google-auth")
    try:
        yield
    except core.PermissionDenied as exc:
        raise UserError(
            f"{what}: permission denied ({exc.message})",
            "your account needs roles/batch.jobsEditor, roles/secretmanager.admin "
            "and roles/iam.serviceAccountUser on the job service account",
        ) from exc
    except auth_exc.DefaultCredentialsError as exc:
        raise UserError(
            f"{what}: no Google Cloud credentials", "run `gcloud auth application-default login`"
        ) from exc
    except core.GoogleAPICallError as exc:
        code = exc.code.name if exc.code else "error"
        raise WorkFailed(f"{what}: {code}: {exc.message}") from exc
    except core.RetryError as exc:
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
            module = _import("google.cloud.batch_v1", "google-cloud-batch")
            self._batch = module.BatchServiceClient()
        return self._batch

    @property
    def logging(self) -> Any:
        if self._logging is None:
            module = _import(
                "google.cloud.logging_v2.services.logging_service_v2", "google-cloud-logging"
            )
            self._logging = module.LoggingServiceV2Client()
        return self._logging

    @property
    def secrets(self) -> Any:
        if self._secrets is None:
            module = _import("google.cloud.secretmanager_v1", "google-cloud-secret-manager")
            self._secrets = module.SecretManagerServiceClient()
        return self._secrets

    # -- Batch ------------------------------------------------------------------------------
    def create_job(self, request: Any) -> Any:
        """Create a job; one that already exists (a retried submission) is returned as is."""
        self.calls["create_job"] += 1
        core = _import("google.api_core.exceptions", "google-api-core")
        with api(f"creating Batch job {request.job_id}"):
            try:
                return self.batch.create_job(request=request)
            except core.AlreadyExists:
                return self.batch.get_job(name=f"{request.parent}/jobs/{request.job_id}")

    def get_job(self, name: str) -> Any | None:
        self.calls["get_job"] += 1
        core = _import("google.api_core.exceptions", "google-api-core")
        with api(f"reading Batch job {name}"):
            try:
                return self.batch.get_job(name=name)
            except core.NotFound:
                return None

    def list_jobs(self, filter_: str) -> list[Any]:
        """Every job that matches the filter: one call, the SDK follows the page tokens."""
        self.calls["list_jobs"] += 1
        batch_v1 = _import("google.cloud.batch_v1", "google-cloud-batch")
        request = batch_v1.ListJobsRequest(parent=self.parent, filter=filter_, page_size=PAGE_SIZE)
        with api("listing Batch jobs"):
            return list(self.batch.list_jobs(request=request))

    def delete_job(self, name: str, reason: str) -> bool:
        """Delete (and so cancel) a job; False when it was already gone."""
        self.calls["delete_job"] += 1
        core = _import("google.api_core.exceptions", "google-api-core")
        with api(f"deleting Batch job {name}"):
            try:
                self.batch.delete_job(request={"name": name, "reason": reason})
            except core.NotFound:
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
        sm = _import("google.cloud.secretmanager_v1", "google-cloud-secret-manager")
        core = _import("google.api_core.exceptions", "google-api-core")
        duration = _import("google.protobuf.duration_pb2", "protobuf")
        name = f"projects/{self.project}/secrets/{secret_id}"
        secret = sm.Secret(
            replication=sm.Replication(automatic=sm.Replication.Automatic()),
            labels=dict(labels),
            ttl=duration.Duration(seconds=SECRET_TTL_S),
        )
        with api(f"storing secret {secret_id} in Secret Manager"):
            self.calls["create_secret"] += 1
            with contextlib.suppress(core.AlreadyExists):  # an earlier attempt made it
                self.secrets.create_secret(
                    request={
                        "parent": f"projects/{self.project}",
                        "secret_id": secret_id,
                        "secret": secret,
                    }
                )
            self.calls["add_secret_version"] += 1
            self.secrets.add_secret_version(
                request={"parent": name, "payload": sm.SecretPayload(data=value.encode())}
            )
        return name

    def delete_secret(self, name: str) -> None:
        self.calls["delete_secret"] += 1
        core = _import("google.api_core.exceptions", "google-api-core")
        with api(f"deleting secret {name}"), contextlib.suppress(core.NotFound):
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
            auth = _import("google.auth", "google-auth")
            transport = _import("google.auth.transport.requests", "google-auth")
            credentials, _ = auth.default(scopes=[CLOUD_PLATFORM])
            session = transport.AuthorizedSession(credentials)
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


def leftovers(clients: Clients, env_id: str, known: Mapping[str, str]) -> list[str]:
    """What still carries the environment's id (or its names) after `terraform destroy`."""
    left = [
        f"Batch job {job.name} ({job.status.state.name.lower()})"
        for job in clients.list_jobs(f'labels.cfw-id="{env_id}"')
        if job.status.state.name not in FINISHED
    ]
    left += [f"secret {name}" for name in clients.list_secrets(f"labels.cfw-id={env_id}")]
    checks = {
        f"bucket {known['bucket']}": f"https://storage.googleapis.com/storage/v1/b/{known['bucket']}",
        f"service account {known['service_account']}": f"https://iam.googleapis.com/v1/projects/{clients.project}/serviceAccounts/"
        f"{known['service_account']}",
        f"network {known['network']}": f"https://compute.googleapis.com/compute/v1/{known['network']}",
    }
    for what, url in checks.items():
        # a second opinion after a destroy Terraform reported done: a check that cannot be
        # made (no permission to read, say) does not hold the environment up
        with contextlib.suppress(CfwError):
            if clients.exists(url):
                left.append(what)
    return left

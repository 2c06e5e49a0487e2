"""The Azure calls of a run: Batch (jobs, tasks, task files) and Blob storage (SAS, logs).
Resource Manager (pool state, leftovers) and credential discovery are in cloud.py.

Credentials: the Batch account key in AZ_BATCH_ACCOUNT_KEY when set, else Entra ID
(``cloud.token_credential``: AZURE_* service principal, workload or managed identity,
`az login`). Storage: AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY when set, else
Entra ID (a user delegation key signs SAS tokens). Nothing here logs a key or a SAS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from cfw.backends.azure_batch import cloud
from cfw.backends.azure_batch.status import TaskState, task_state
from cfw.backends.sdk import require
from cfw.core.errors import UserError, WorkFailed

batch = require("azure.batch", "azure")
models = require("azure.batch.models", "azure")
azure_credentials = require("azure.core.credentials", "azure")
azure_errors = require("azure.core.exceptions", "azure")
blob = require("azure.storage.blob", "azure")

BATCH_SCOPE = "https://batch.core.windows.net/.default"
TASK_FIELDS = ["id", "state", "stateTransitionTime", "executionInfo", "nodeInfo"]


# -- Batch ------------------------------------------------------------------------------------
class BatchService:
    """The few Batch operations the backend needs, with Batch's errors made plain."""

    def __init__(self, account_url: str, environ: Mapping[str, str], client: Any = None):
        self.account_url = account_url.rstrip("/")
        self.client = client or batch.BatchClient(self.account_url, self._credential(environ))

    def _credential(self, environ: Mapping[str, str]) -> Any:
        key = environ.get("AZ_BATCH_ACCOUNT_KEY")
        if key:
            name = environ.get("AZ_BATCH_ACCOUNT_NAME") or urlparse(self.account_url).hostname
            return azure_credentials.AzureNamedKeyCredential((name or "").split(".")[0], key)
        return cloud.token_credential(environ)

    def ensure_job(self, job_id: str, pool_id: str, labels: Mapping[str, str]) -> None:
        job = models.BatchJobCreateOptions(
            id=job_id,
            pool_info=models.BatchPoolInfo(pool_id=pool_id),
            all_tasks_complete_mode="noaction",
            metadata=[models.BatchMetadataItem(name=k, value=v) for k, v in sorted(labels.items())],
        )
        try:
            self.client.create_job(job)
        except azure_errors.HttpResponseError as exc:  # 409 is JobExists, but also PoolNotFound
            if cloud.error_code(exc) == "JobExists":
                return  # a resumed run, or another submit of the same run
            if cloud.error_code(exc) == "PoolNotFound":
                raise UserError(
                    f"Batch pool {pool_id} does not exist", "run `cfw up` for this environment"
                ) from exc
            raise WorkFailed(
                f"could not create Batch job {job_id}: {cloud.error_code(exc)}"
            ) from exc
        except azure_errors.AzureError as exc:  # no answer: network, DNS, TLS
            raise WorkFailed(f"could not reach Batch at {self.account_url}: {exc}") from exc

    def add_task(self, job_id: str, task: Mapping[str, Any]) -> None:
        try:
            self.client.create_task(job_id, models.BatchTaskCreateOptions(dict(task)))
        except azure_errors.HttpResponseError as exc:
            if cloud.error_code(exc) == "TaskExists":
                return  # the same attempt submitted twice: the task is there
            raise WorkFailed(
                f"Batch refused task {task.get('id')}: {cloud.error_code(exc)}"
            ) from exc
        except azure_errors.AzureError as exc:
            raise WorkFailed(f"could not reach Batch at {self.account_url}: {exc}") from exc

    def task_states(
        self, job_id: str, since: datetime | None, active_too: bool = False
    ) -> list[TaskState]:
        """One list call (following odata.nextLink pages): tasks that left `active`
        (``active_too``: and active ones, which a requeued task is), only those that
        changed since ``since`` when given."""
        clauses = [] if active_too else ["state ne 'active'"]
        if since is not None:
            stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
            clauses.append(f"stateTransitionTime ge datetime'{stamp}'")
        pages = self.client.list_tasks(
            job_id, filter=" and ".join(clauses) or None, select=TASK_FIELDS
        )
        return [task_state(t) for t in pages]

    def terminate(self, job_id: str, task_id: str) -> None:
        try:
            self.client.terminate_task(job_id, task_id)
        except (azure_errors.ResourceNotFoundError, azure_errors.ResourceExistsError):
            pass  # gone, or already completed: nothing left to stop
        except azure_errors.HttpResponseError as exc:
            if exc.status_code not in (404, 409):
                raise

    def task_file(self, job_id: str, task_id: str, name: str) -> str | None:
        try:
            return b"".join(self.client.download_task_file(job_id, task_id, name)).decode(
                errors="replace"
            )
        except azure_errors.HttpResponseError:
            return None  # no such file, or its node is gone (autoscaled away)

    def delete_job(self, job_id: str, wait: float = 10.0) -> None:
        try:
            poller = self.client.begin_delete_job(job_id, polling_interval=1)
        except azure_errors.ResourceNotFoundError:
            return
        with contextlib.suppress(Exception):
            poller.wait(timeout=wait)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


# -- Blob storage -----------------------------------------------------------------------------
def _connection_values(environ: Mapping[str, str]) -> dict[str, str]:
    raw = environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
    return dict(part.split("=", 1) for part in raw.split(";") if "=" in part)


def account_key(environ: Mapping[str, str]) -> str | None:
    return environ.get("AZURE_STORAGE_KEY") or _connection_values(environ).get("AccountKey")


def blob_service(blob_endpoint: str, environ: Mapping[str, str]) -> Any:
    key = account_key(environ)
    if key:
        name = _connection_values(environ).get("AccountName") or storage_account_of(blob_endpoint)
        shared_key = {"account_name": name, "account_key": key}
        return blob.BlobServiceClient(blob_endpoint, credential=shared_key)
    return blob.BlobServiceClient(blob_endpoint, credential=cloud.token_credential(environ))


def storage_account_of(blob_endpoint: str) -> str:
    """The account name of https://NAME.blob.core.windows.net or http://host:port/NAME."""
    parsed = urlparse(blob_endpoint)
    host = parsed.hostname or ""
    if host.endswith(".blob.core.windows.net") or ("." in host and not host[0].isdigit()):
        return host.split(".")[0]
    return parsed.path.strip("/").split("/")[0]


def container_sas(
    blob_endpoint: str, container: str, permission: str, hours: int, environ: Mapping[str, str]
) -> str:
    """A SAS token for one container: signed with the account key when there is one, else
    with a user delegation key from Entra ID. ``permission``: "cw" (write) or "r"."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    expiry = start + timedelta(hours=hours, minutes=5)
    perms = blob.ContainerSasPermissions.from_string(permission)
    name = storage_account_of(blob_endpoint)
    key = account_key(environ)
    if key:
        name = _connection_values(environ).get("AccountName") or name
        return blob.generate_container_sas(
            name, container, account_key=key, permission=perms, start=start, expiry=expiry
        )
    delegation = blob_service(blob_endpoint, environ).get_user_delegation_key(start, expiry)
    return blob.generate_container_sas(
        name,
        container,
        user_delegation_key=delegation,
        permission=perms,
        start=start,
        expiry=expiry,
    )


def read_blobs(
    blob_endpoint: str, container: str, prefix: str, environ: Mapping[str, str]
) -> Iterator[tuple[str, str]]:
    """(name, text) of every blob under prefix (task logs uploaded as output files)."""
    service = blob_service(blob_endpoint, environ)
    box = service.get_container_client(container)
    for item in box.list_blobs(name_starts_with=prefix):
        text = box.download_blob(item.name).readall().decode(errors="replace")
        yield item.name, text

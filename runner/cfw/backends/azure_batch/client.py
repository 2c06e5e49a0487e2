"""The Azure calls: Batch (jobs, tasks, task files), Blob storage (SAS, logs) and Resource
Manager (pool state for `cfw status`, leftovers after `down`).

Credentials: the Batch account key in AZ_BATCH_ACCOUNT_KEY when set, else Entra ID
(``DefaultAzureCredential``: AZURE_* service principal, workload or managed identity,
`az login`). Storage: AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY when set, else
Entra ID (a user delegation key signs SAS tokens). Nothing here logs a key or a SAS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import CredentialUnavailableError

from cfw.core.errors import UserError, WorkFailed

BATCH_SCOPE = "https://batch.core.windows.net/.default"
TASK_FIELDS = ["id", "state", "stateTransitionTime", "executionInfo", "nodeInfo"]


def token_credential(environ: Mapping[str, str]) -> TokenCredential:
    """Entra ID credentials from the usual chain (kept in one place so tests can swap it)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def error_code(exc: HttpResponseError) -> str:
    return str((getattr(exc, "error", None) and exc.error.code) or exc.status_code or "error")


# -- Batch ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskState:
    id: str
    state: str  # active, preparing, running, completed
    transition: datetime | None
    result: str | None = None  # success / failure
    exit_code: int | None = None
    failure: str | None = None  # code: message
    node: str | None = None


class BatchService:
    """The few Batch operations the backend needs, with Batch's errors made plain."""

    def __init__(self, account_url: str, environ: Mapping[str, str], client: Any = None):
        self.account_url = account_url.rstrip("/")
        self.client = client or BatchClient(self.account_url, self._credential(environ))

    def _credential(self, environ: Mapping[str, str]) -> Any:
        key = environ.get("AZ_BATCH_ACCOUNT_KEY")
        if key:
            name = environ.get("AZ_BATCH_ACCOUNT_NAME") or urlparse(self.account_url).hostname
            return AzureNamedKeyCredential((name or "").split(".")[0], key)
        return token_credential(environ)

    def ensure_job(self, job_id: str, pool_id: str, labels: Mapping[str, str]) -> None:
        job = bm.BatchJobCreateOptions(
            id=job_id,
            pool_info=bm.BatchPoolInfo(pool_id=pool_id),
            all_tasks_complete_mode="noaction",
            metadata=[bm.BatchMetadataItem(name=k, value=v) for k, v in sorted(labels.items())],
        )
        try:
            self.client.create_job(job)
        except HttpResponseError as exc:  # 409 is JobExists, but also PoolNotFound
            if error_code(exc) == "JobExists":
                return  # a resumed run, or another submit of the same run
            if error_code(exc) == "PoolNotFound":
                raise UserError(
                    f"Batch pool {pool_id} does not exist", "run `cfw up` for this environment"
                ) from exc
            raise WorkFailed(f"could not create Batch job {job_id}: {error_code(exc)}") from exc
        except AzureError as exc:  # no answer: network, DNS, TLS
            raise WorkFailed(f"could not reach Batch at {self.account_url}: {exc}") from exc

    def add_task(self, job_id: str, task: Mapping[str, Any]) -> None:
        try:
            self.client.create_task(job_id, bm.BatchTaskCreateOptions(dict(task)))
        except HttpResponseError as exc:
            if error_code(exc) == "TaskExists":
                return  # the same attempt submitted twice: the task is there
            raise WorkFailed(f"Batch refused task {task.get('id')}: {error_code(exc)}") from exc
        except AzureError as exc:
            raise WorkFailed(f"could not reach Batch at {self.account_url}: {exc}") from exc

    def task_states(self, job_id: str, since: datetime | None) -> list[TaskState]:
        """One list call (following odata.nextLink pages): tasks that left `active`,
        only those that changed since ``since`` when given."""
        clauses = ["state ne 'active'"]
        if since is not None:
            stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
            clauses.append(f"stateTransitionTime ge datetime'{stamp}'")
        pages = self.client.list_tasks(job_id, filter=" and ".join(clauses), select=TASK_FIELDS)
        return [_task_state(t) for t in pages]

    def terminate(self, job_id: str, task_id: str) -> None:
        try:
            self.client.terminate_task(job_id, task_id)
        except (ResourceNotFoundError, ResourceExistsError):
            pass  # gone, or already completed: nothing left to stop
        except HttpResponseError as exc:
            if exc.status_code not in (404, 409):
                raise

    def task_file(self, job_id: str, task_id: str, name: str) -> str | None:
        try:
            return b"".join(self.client.download_task_file(job_id, task_id, name)).decode(
                errors="replace"
            )
        except HttpResponseError:
            return None  # no such file, or its node is gone (autoscaled away)

    def delete_job(self, job_id: str, wait: float = 10.0) -> None:
        try:
            poller = self.client.begin_delete_job(job_id, polling_interval=1)
        except ResourceNotFoundError:
            return
        with contextlib.suppress(Exception):
            poller.wait(timeout=wait)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _text(value: Any) -> str | None:
    """An SDK enum (or the plain string the service sent) as its wire value."""
    return None if value is None else str(getattr(value, "value", value))


def _task_state(task: Any) -> TaskState:
    info = task.execution_info
    failure = None
    if info is not None and info.failure_info is not None:
        failure = f"{info.failure_info.code}: {info.failure_info.message}"
    return TaskState(
        id=task.id,
        state=_text(task.state) or "active",
        transition=task.state_transition_time,
        result=_text(info.result) if info is not None else None,
        exit_code=info.exit_code if info is not None else None,
        failure=failure,
        node=task.node_info.node_id if task.node_info else None,
    )


# -- Blob storage -----------------------------------------------------------------------------
def _connection_values(environ: Mapping[str, str]) -> dict[str, str]:
    raw = environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
    return dict(part.split("=", 1) for part in raw.split(";") if "=" in part)


def account_key(environ: Mapping[str, str]) -> str | None:
    return environ.get("AZURE_STORAGE_KEY") or _connection_values(environ).get("AccountKey")


def blob_service(blob_endpoint: str, environ: Mapping[str, str]) -> Any:
    from azure.storage.blob import BlobServiceClient

    key = account_key(environ)
    if key:
        name = _connection_values(environ).get("AccountName") or storage_account_of(blob_endpoint)
        shared_key = {"account_name": name, "account_key": key}
        return BlobServiceClient(blob_endpoint, credential=shared_key)
    return BlobServiceClient(blob_endpoint, credential=token_credential(environ))


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
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    start = datetime.now(UTC) - timedelta(minutes=5)
    expiry = start + timedelta(hours=hours, minutes=5)
    perms = ContainerSasPermissions.from_string(permission)
    name = storage_account_of(blob_endpoint)
    key = account_key(environ)
    if key:
        name = _connection_values(environ).get("AccountName") or name
        return generate_container_sas(
            name, container, account_key=key, permission=perms, start=start, expiry=expiry
        )
    delegation = blob_service(blob_endpoint, environ).get_user_delegation_key(start, expiry)
    return generate_container_sas(
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
    for blob in box.list_blobs(name_starts_with=prefix):
        text = box.download_blob(blob.name).readall().decode(errors="replace")
        yield blob.name, text


# -- Resource Manager -------------------------------------------------------------------------
def mgmt_client(subscription_id: str, arm_endpoint: str, environ: Mapping[str, str]) -> Any:
    from azure.mgmt.batch import BatchManagementClient

    base = arm_endpoint.rstrip("/")
    return BatchManagementClient(
        token_credential(environ),
        subscription_id,
        base_url=base,
        credential_scopes=[f"{base}/.default"],
    )


def pool_details(
    config: Any, outputs: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Allocation state, node counts and autoscale/resize errors of each pool."""
    subscription = str(outputs.get("subscription_id") or config.subscription_id or "")
    group, account = outputs.get("resource_group_name"), outputs.get("batch_account_name")
    if not (subscription and group and account):
        return {"pools": "unknown (the environment has no outputs yet)"}
    client = mgmt_client(subscription, config.arm_endpoint, environ)
    details: dict[str, Any] = {}
    for pool_id in outputs.get("batch_pool_ids") or []:
        try:
            pool = client.pool.get(group, account, pool_id)
        except ResourceNotFoundError:
            details[f"pool {pool_id}"] = "missing (deleted outside Terraform?)"
            continue
        except (ClientAuthenticationError, CredentialUnavailableError) as exc:
            return {
                "pools": f"unknown: no usable Azure credentials ({type(exc).__name__}); "
                "run `az login` or set AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"
            }
        except HttpResponseError as exc:
            details[f"pool {pool_id}"] = f"could not read it: {error_code(exc)}"
            continue
        except AzureError as exc:
            return {"pools": f"unknown: Azure Resource Manager did not answer ({exc})"}
        details[f"pool {pool_id}"] = describe_pool(pool)
    return details


def describe_pool(pool: Any) -> str:
    parts = [
        f"{pool.vm_size}",
        f"allocation {_text(pool.allocation_state) or '?'}",
        f"nodes {pool.current_dedicated_nodes or 0} dedicated + "
        f"{pool.current_low_priority_nodes or 0} low-priority",
    ]
    scale = pool.scale_settings.auto_scale if pool.scale_settings else None
    if scale is not None and scale.evaluation_interval is not None:
        minutes = int(scale.evaluation_interval.total_seconds() // 60)
        parts.append(f"autoscale every {minutes} min")
    run = pool.auto_scale_run
    if run is not None and run.error is not None:
        parts.append(f"autoscale error {run.error.code}: {run.error.message}")
    resize = pool.resize_operation_status
    for error in (resize.errors or []) if resize is not None else []:
        parts.append(f"resize error {error.code}: {error.message}")
    return "; ".join(parts)


def tagged_resources(
    subscription_id: str, env_id: str, config: Any, environ: Mapping[str, str]
) -> list[str]:
    """Resource groups and resources that still carry cfw-id=ENV_ID."""
    if not subscription_id:
        return []
    try:
        return _tagged(subscription_id, env_id, config, environ)
    except (AzureError, CredentialUnavailableError) as exc:
        raise WorkFailed(
            f"could not list what is left of {env_id} in subscription {subscription_id}: {exc}",
            "check the Azure credentials (az login), then run `cfw down` again",
        ) from exc


def _tagged(
    subscription_id: str, env_id: str, config: Any, environ: Mapping[str, str]
) -> list[str]:
    client = mgmt_client(subscription_id, config.arm_endpoint, environ)
    pipeline = client._client  # the ARM pipeline: generic GETs with the same auth and retries
    found: list[str] = []
    query = f"tagName eq 'cfw-id' and tagValue eq '{env_id}'"
    for path, version in (
        (f"/subscriptions/{subscription_id}/resourcegroups", "2021-04-01"),
        (f"/subscriptions/{subscription_id}/resources", "2021-04-01"),
    ):
        url: str | None = f"{config.arm_endpoint.rstrip('/')}{path}"
        params: dict[str, str] | None = {"api-version": version, "$filter": query}
        while url:
            from azure.core.rest import HttpRequest

            response = pipeline.send_request(HttpRequest("GET", url, params=params))
            response.raise_for_status()
            body = response.json()
            found += [item["id"] for item in body.get("value", [])]
            url, params = body.get("nextLink"), None
    return found

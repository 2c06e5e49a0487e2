"""The guard's adapter for kind `azure-batch`: heartbeats as blobs in the environment's data
container (last-modified from the storage), active tasks of the per-run Batch jobs that
carry the environment's cfw-id in their metadata.

Cancel terminates the tasks (a completed one is no error) and, once a run's tasks are all
ended, deletes its per-run Batch job (what the run's own end would have done). Stop has
nothing to do: the pools' autoscale formula takes them to zero nodes with no task, and
keeps none past the environment's expiry.

Zipped into the guard's Azure Function (cfw.backends.azure_batch.guard_zip) with client,
cloud and status: standard library, cfw.core and the Azure SDKs; `from_environ` is what the
Function calls, with its managed identity and no key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cfw.backends.azure_batch import client
from cfw.backends.sdk import require
from cfw.core.guard import Action, Job
from cfw.core.heartbeat import ObjectInfo

NOTHING_TO_STOP = "nothing to stop: the pools' autoscale takes them to zero nodes with no task"


class BlobStore:
    """HeartbeatStore in one Azure Blob container."""

    def __init__(self, container: Any):
        self.container = container

    def put(self, key: str, body: bytes) -> None:
        self.container.upload_blob(key, body, overwrite=True)

    def get(self, key: str) -> bytes | None:
        try:
            return self.container.download_blob(key).readall()
        except client.azure_errors.ResourceNotFoundError:
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(client.azure_errors.ResourceNotFoundError):
            self.container.delete_blob(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        found = [
            ObjectInfo(item.name, _utc(item.last_modified))
            for item in self.container.list_blobs(name_starts_with=prefix)
        ]
        return sorted(found, key=lambda o: o.key)


def blob_store(config: Any, outputs: Mapping[str, Any], environ: Mapping[str, str]) -> BlobStore:
    endpoint = str(outputs["storage_blob_endpoint"])
    service = client.blob_service(endpoint, environ)
    return BlobStore(service.get_container_client(config.data_container))


class AzureBatchGuard:
    """Adapter (cfw.core.guard_check) of an Azure Batch environment."""

    prefix = ""

    def __init__(self, service: client.BatchService, store: BlobStore, env_id: str):
        self.service, self.store, self.env_id = service, store, env_id

    def _runs(self) -> list[tuple[str, str | None]]:
        """(Batch job id, run id) of this environment's active per-run jobs."""
        found = []
        for job in self.service.client.list_jobs(filter="state eq 'active'"):
            meta = {m.name: m.value for m in job.metadata or []}
            if meta.get("cfw-id") == self.env_id:
                found.append((job.id, meta.get("cfw-run") or None))
        return found

    def jobs(self) -> list[Job]:
        jobs = []
        for job_id, run_id in self._runs():
            tasks = self.service.client.list_tasks(
                job_id, filter="state ne 'completed'", select=["id", "state", "creationTime"]
            )
            for task in tasks:
                created = _utc(task.creation_time or datetime.now(UTC))
                state = str(getattr(task.state, "value", task.state)).upper()
                jobs.append(Job(f"{job_id}/{task.id}", run_id, state, created))
        return jobs

    def stopped(self) -> bool | None:
        return None

    def cancel(self, action: Action) -> list[str]:
        active = {
            j.job_id: j
            for j in self.jobs()
            if j.job_id in action.job_ids or (action.run_id and j.run_id == action.run_id)
        }
        for ext in sorted(active):
            job_id, _, task_id = ext.partition("/")
            self.service.terminate(job_id, task_id)
        if action.run_id:  # the run's per-run jobs, as its end would have deleted them
            for job_id, run_id in self._runs():
                if run_id == action.run_id:
                    self.service.delete_job(job_id, wait=0)
        return sorted(active)

    def stop(self, action: Action) -> str:
        return NOTHING_TO_STOP


def adapter_for(
    config: Any, outputs: Mapping[str, Any], environ: Mapping[str, str], env_id: str
) -> AzureBatchGuard:
    service = client.BatchService(str(outputs["batch_account_url"]), environ)
    return AzureBatchGuard(service, blob_store(config, outputs, environ), env_id)


def from_environ(environ: Mapping[str, str], session: Any = None) -> AzureBatchGuard:
    """The adapter the guard's Function builds from its app settings (modules/azure-guard:
    CFW_GUARD_BATCH_URL, CFW_GUARD_BLOB_ENDPOINT, CFW_GUARD_CONTAINER, CFW_GUARD_ENV_ID).
    Batch and the container are reached with the Function's managed identity, whose roles
    allow only what this adapter calls; no key or SAS is in any setting."""
    credential = require("azure.identity", "azure").ManagedIdentityCredential()
    url = environ["CFW_GUARD_BATCH_URL"]
    batch = client.batch.BatchClient(url, credential)
    service = client.BatchService(url, {}, client=batch)
    blobs = client.blob.BlobServiceClient(environ["CFW_GUARD_BLOB_ENDPOINT"], credential)
    store = BlobStore(blobs.get_container_client(environ["CFW_GUARD_CONTAINER"]))
    return AzureBatchGuard(service, store, environ["CFW_GUARD_ENV_ID"])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""The guard's adapter for kind `google-batch`: run heartbeats as objects in the
environment's bucket (cfw.backends.google_batch.store, last-modified from GCS), active Batch
jobs by the environment's cfw-id label (one list call), cancel deleting a run's jobs by its
cfw-run label (Batch stops their VMs), stop nothing (each job is a VM of its own: nothing
bills while idle).

In the cloud, `cfw up` deploys this adapter in a Cloud Function that Cloud Scheduler calls
every guard.interval (modules/gcp-guard, cfw.backends._google.guard_function): it builds the
adapter with `from_environ` from the variables Terraform sets, and runs as a service account
that may only list and delete Batch jobs and use the `.cfw/` folder of the bucket
(templates/root/google-batch.tf.j2). A job is also bounded by its maxRunDuration (the ttl,
cfw.backends.google_batch.ttl).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cfw.backends.google_batch.client import Clients
from cfw.backends.google_batch.status import FINISHED
from cfw.backends.google_batch.store import gcs_store
from cfw.core.guard import Action, Job
from cfw.core.heartbeat import HeartbeatStore

GONE = {*FINISHED, "DELETION_IN_PROGRESS"}


class GoogleBatchGuard:
    """Adapter (cfw.core.guard_check) of a Google Batch environment."""

    def __init__(
        self, clients: Clients, env_id: str, store: HeartbeatStore | None, prefix: str = ""
    ):
        self.clients, self.env_id = clients, env_id
        self.store, self.prefix = store, prefix

    def jobs(self) -> list[Job]:
        jobs = []
        for job in self.clients.list_jobs(f'labels.cfw-id="{self.env_id}"'):
            state = job.status.state.name
            if state in GONE:
                continue
            created = job.create_time or datetime.now(UTC)
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            jobs.append(Job(job.name, job.labels.get("cfw-run") or None, state, created))
        return jobs

    def stopped(self) -> bool | None:
        return None

    def cancel(self, action: Action) -> list[str]:
        names = [
            j.job_id
            for j in self.jobs()
            if j.job_id in action.job_ids or (action.run_id and j.run_id == action.run_id)
        ]
        reason = f"cancelled by cfw ({action.cause})"
        return [name for name in sorted(names) if self.clients.delete_job(name, reason)]

    def stop(self, action: Action) -> str:
        return "nothing to stop: each job is a VM of its own, and nothing bills while idle"


def adapter_for(
    config: Any, outputs: dict, env_id: str, placed: tuple[HeartbeatStore, str]
) -> GoogleBatchGuard:
    store, prefix = placed
    clients = Clients(str(outputs["project"]), str(outputs["region"]))
    return GoogleBatchGuard(clients, env_id, store, prefix)


def from_environ(environ: Mapping[str, str], session: Any = None) -> GoogleBatchGuard:
    """The adapter the guard's function builds from the variables the root module sets
    (CFW_GUARD_PROJECT, CFW_GUARD_REGION, CFW_GUARD_ENV_ID and CFW_GUARD_STORE, gs://BUCKET:
    the heartbeats at its root, as heartbeat_store has them), with the function's own
    credentials (SESSION is unused)."""
    project, region = environ["CFW_GUARD_PROJECT"], environ["CFW_GUARD_REGION"]
    bucket = environ["CFW_GUARD_STORE"].removeprefix("gs://").strip("/")
    store = gcs_store(project, bucket)
    return GoogleBatchGuard(Clients(project, region), environ["CFW_GUARD_ENV_ID"], store, "")

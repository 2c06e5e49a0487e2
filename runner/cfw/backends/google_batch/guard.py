"""The guard's adapter for kind `google-batch`: run heartbeats as objects in the
environment's bucket (cfw.backends.google_batch.store, last-modified from GCS), active Batch
jobs by the environment's cfw-id label (one list call), cancel deleting a run's jobs by its
cfw-run label (Batch stops their VMs), stop nothing (each job is a VM of its own: nothing
bills while idle).

No guard runs in the cloud for this kind yet: `cfw guard google-batch --once` (from a cron
job on a machine that stays up) is what cancels the jobs of a run whose runner is gone;
until then a job is bounded by its maxRunDuration (the ttl, cfw.backends.google_batch.ttl).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cfw.backends.google_batch.client import Clients
from cfw.backends.google_batch.status import FINISHED
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

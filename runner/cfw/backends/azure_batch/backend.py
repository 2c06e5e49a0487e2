"""The azure-batch backend: each job a task on the run's Batch job for the pool that fits.

The pools are Terraform's: this backend never creates or deletes a pool. A run gets one
Batch job per pool it uses (``cfw-RUN-POOL``), made at its first task and deleted by
``close()``. Status is one ``list_tasks`` call per job per cycle (paged), filtered to
tasks that left ``active`` and changed since the last cycle.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cfw.backends.azure_batch import client
from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.status import preempted, task_status
from cfw.backends.azure_batch.translate import SAS_READ, SAS_WRITE, env_placeholder
from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.sdk import require

azure_errors = require("azure.core.exceptions", "azure")

# the service's clock and ours may differ; re-read transitions this far back
WATERMARK_SLACK = timedelta(minutes=2)
log = logging.getLogger("cfw.azure_batch")
# env settings that name things, not secrets: sending them is no reason to warn
PLAIN_ENV = frozenset({"SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME"})


class AzureBatchBackend(Backend[AzureBatchConfig]):
    def __init__(
        self,
        ctx: EnvContext[AzureBatchConfig],
        environ: Mapping[str, str] | None = None,
        service: client.BatchService | None = None,
    ):
        super().__init__(ctx)
        self.environ = dict(os.environ if environ is None else environ)
        self.service = service or client.BatchService(
            str(ctx.outputs["batch_account_url"]), self.environ
        )
        self.jobs: set[str] = set()  # per-run Batch jobs this backend made
        self.last: dict[str, JobStatus] = {}  # last known status per external id
        self.since: dict[str, datetime] = {}  # per Batch job: newest transition seen
        self.cancelled: set[str] = set()
        # spot tasks: the preemptions Batch may requeue them after (JobSpec.spot_retries)
        self.spot_retries: dict[str, int] = {}
        self.sas: dict[tuple[str, str], tuple[str, float]] = {}  # token, when minted
        self.slots_warned: set[str] = set()  # pools warned about jobs of too many slots
        self.env_warned = False
        self._lock = threading.Lock()

    # -- submit -----------------------------------------------------------------------------
    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        self._warn_slots_once(spec, payload["pool_id"])
        self._warn_env_once(spec, secrets)
        job_id = payload["job_id"]
        with self._lock:  # the job exists before any task is added to it
            if job_id not in self.jobs:
                labels = {
                    "cfw-env": self.ctx.name,
                    "cfw-id": self.ctx.env_id,
                    "cfw-run": self.ctx.run_id,
                }
                self.service.ensure_job(job_id, payload["pool_id"], labels)
                self.jobs.add(job_id)
            task = self.fill(payload["task"], secrets)
        self.service.add_task(job_id, task)
        external_id = f"{job_id}/{task['id']}"
        self.last[external_id] = JobStatus(
            JobState.PENDING,
            reason=f"the Batch task is active: no node of pool {payload['pool_id']} took it",
        )
        if spec.preemptible and spec.spot_retries is not None:
            self.spot_retries[external_id] = spec.spot_retries
        return external_id

    def _warn_slots_once(self, spec: JobSpec, pool_id: str) -> None:
        """A job of more slots than the pool's formula assumes: the pool may get too few
        nodes (its tasks wait, none fails). Said once per run and pool."""
        config = self.ctx.config
        index, pool = next((i, p) for i, p in enumerate(config.pools) if p.pool_id == pool_id)
        assumed = config.slots_per_task(pool)
        if spec.threads <= assumed or pool_id in self.slots_warned:
            return
        self.slots_warned.add(pool_id)
        log.warning(
            f"cfw: rule {spec.rule} takes {spec.threads} slots (threads) on pool {pool_id}, "
            f"whose autoscale formula assumes tasks of {assumed} slot(s): the pool may get "
            f"too few nodes and jobs wait; set pools[{index}].slots_per_task to "
            f"{spec.threads} (at most {config.slots(pool)}) and run `cfw up` again"
        )

    def _warn_env_once(self, spec: JobSpec, secrets: Mapping[str, str]) -> None:
        """Batch has no secret env: a task's environmentSettings (--envvars, storage
        credentials) are readable by whoever may read the job. Said once per run."""
        sent = sorted(n for n in set(spec.env) if n in secrets and n not in PLAIN_ENV)
        if self.env_warned or not sent:
            return
        self.env_warned = True
        log.warning(
            "cfw: environment variables are not secret on Azure Batch: each task keeps them "
            "as environmentSettings, readable by whoever may read the run's Batch jobs "
            f"({self.ctx.outputs['batch_account_url']}); sent: {', '.join(sent)}"
        )

    def fill(self, task: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
        """The task with its placeholders replaced: env values and SAS tokens."""
        task = copy.deepcopy(dict(task))
        settings = []
        for item in task.get("environmentSettings") or []:
            name = item["name"]
            if item.get("value") == env_placeholder(name):
                if name not in secrets:
                    continue
                item = {"name": name, "value": secrets[name]}
            settings.append(item)
        task["environmentSettings"] = settings
        for out in task.get("outputFiles") or []:
            dest = out["destination"]["container"]
            dest["containerUrl"] = self._signed(dest["containerUrl"], SAS_WRITE, "cw")
        for res in task.get("resourceFiles") or []:
            res["httpUrl"] = self._signed(res["httpUrl"], SAS_READ, "r")
        return task

    def _signed(self, url: str, placeholder: str, permission: str) -> str:
        if not url.endswith(f"?{placeholder}"):
            return url
        base = url[: -len(placeholder) - 1]
        endpoint = str(self.ctx.outputs["storage_blob_endpoint"]).rstrip("/")
        container = base[len(endpoint) + 1 :].split("/")[0]
        key = (container, permission)
        hours = self.ctx.config.sas_hours
        token, minted = self.sas.get(key, ("", 0.0))
        if not token or time.monotonic() - minted > hours * 1800:  # half its lifetime
            token, minted = (
                client.container_sas(endpoint, container, permission, hours, self.environ),
                time.monotonic(),
            )
            self.sas[key] = (token, minted)
        return f"{base}?{token}"

    # -- status -----------------------------------------------------------------------------
    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        by_job: dict[str, list[str]] = {}
        for ext in external_ids:
            by_job.setdefault(ext.split("/", 1)[0], []).append(ext)
        result: dict[str, JobStatus] = {}
        for job_id, ids in by_job.items():
            open_ids = [i for i in ids if not self._finished(i)]
            if open_ids:
                self._refresh(job_id, open_ids)
            for ext in ids:
                result[ext] = self.last.get(ext, JobStatus(JobState.PENDING))
        return result

    def _finished(self, ext: str) -> bool:
        status = self.last.get(ext)
        return status is not None and status.state.finished

    def _refresh(self, job_id: str, open_ids: list[str]) -> None:
        try:
            # a spot task Batch requeued is active again: list those too while one is open
            spot = any(ext in self.spot_retries for ext in open_ids)
            states = self.service.task_states(job_id, self.since.get(job_id), active_too=spot)
        except azure_errors.ResourceNotFoundError:
            for ext in open_ids:
                self.last[ext] = JobStatus(
                    JobState.FAILED, reason=f"the run's Batch job {job_id} is gone"
                )
            return
        except azure_errors.AzureError:
            return  # no answer this cycle (throttled, network): ask again next cycle
        newest = self.since.get(job_id)
        for task in states:
            ext = f"{job_id}/{task.id}"
            if ext in self.last and not self._finished(ext):
                lost = None
                if ext in self.spot_retries and ext not in self.cancelled:
                    lost = preempted(task, self.spot_retries[ext])
                if lost is not None:  # Batch would requeue it again: stop it here
                    self.service.terminate(job_id, task.id)
                self.last[ext] = lost or task_status(task, cancelled=ext in self.cancelled)
            if task.transition is not None:
                mark = task.transition - WATERMARK_SLACK
                newest = mark if newest is None or mark > newest else newest
        if newest is not None:
            self.since[job_id] = newest

    # -- cancel, logs, close ----------------------------------------------------------------
    def cancel(self, external_ids: Sequence[str]) -> None:
        for ext in external_ids:
            job_id, _, task_id = ext.partition("/")
            if not task_id or self._finished(ext):
                continue
            self.cancelled.add(ext)
            self.service.terminate(job_id, task_id)

    def logs(self, external_id: str) -> str:
        """stdout and stderr of a task: from its node, else from the uploaded output files."""
        job_id, _, task_id = external_id.partition("/")
        parts = {}
        for name in ("stdout.txt", "stderr.txt"):
            text = self.service.task_file(job_id, task_id, name)
            if text is not None:
                parts[name] = text
        if not parts:
            parts = self._uploaded_logs(task_id)
        if not parts:
            return f"no log of {external_id}: its node is gone and nothing was uploaded\n"
        return "".join(
            f"== {name} ==\n{text}" + ("" if text.endswith("\n") else "\n")
            for name, text in sorted(parts.items(), reverse=True)
        )

    def _uploaded_logs(self, task_id: str) -> dict[str, str]:
        config = self.ctx.config
        prefix = f"{self.ctx.run_id}/{task_id}/"
        try:
            return {
                name.rsplit("/", 1)[-1]: text
                for name, text in client.read_blobs(
                    str(self.ctx.outputs["storage_blob_endpoint"]),
                    config.logs_container,
                    prefix,
                    self.environ,
                )
            }
        except Exception:  # a log we cannot read must not hide the failure itself
            return {}

    def close(self) -> None:
        """Delete the run's Batch jobs (and with them their tasks); pools stay."""
        for job_id in sorted(self.jobs):
            self.service.delete_job(job_id)
        self.jobs.clear()
        self.service.close()

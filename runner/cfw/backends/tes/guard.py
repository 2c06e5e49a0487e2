"""The guard's adapters for kind `tes` (cfw.core.guard_check.Adapter).

FunnelGuard, for the Funnel server cfw provisions on AWS (and the one the guard's Lambda
builds, cfw.backends._aws.guard_lambda):
- jobs: the AWS Batch jobs not yet ended on the environment's own job queue (every job on
  it is Funnel's, one per TES task). Funnel names a Batch job after its TES task, which is
  cfw's job name (`cfw-<run id>-<jobid>-<rule>`): the run is read from it.
- cancel: TerminateJob of each (a queued job is removed, a running one's container killed).
  The TES task itself is left to Funnel: the Lambda cannot reach the server (its security
  group admits the allowed networks only) and holds no password.
- stop: what bills while idle is the Funnel server's instance and the instances the
  compute environment keeps: the instance is stopped (not terminated: `cfw up` starts it
  again through aws_ec2_instance_state, and `cfw down` destroys it as before) and the
  compute environment is DISABLED, so that it places no job and scales out no instance; it
  scales in to its minvCpus, 0. stopped() reads both back.

TesApiGuard, for an existing TES server given by url (nothing provisioned, so nothing
cloud-side runs: `cfw guard NAME --once` and `cfw cancel` use it): jobs are the server's
tasks tagged with the environment's cfw-id, cancel is CancelTask; nothing of cfw's bills.

FunnelGuard is zipped into the guard's Lambda: standard library, cfw.core and the boto3
clients it is given at import time; TesApiGuard's imports are made when it is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cfw.backends._aws.store import S3Store, split_url
from cfw.core.guard import Action, Job

RUN_OF_NAME = re.compile(r"^cfw-([a-z0-9]+)-")
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")  # Batch: not ended
SERVER_STOPPED = ("stopping", "stopped")
TES_ACTIVE = ("QUEUED", "INITIALIZING", "RUNNING", "PAUSED")


def run_of(name: str | None) -> str | None:
    """The cfw run of a Batch job or TES task, from its name; None for another name."""
    match = RUN_OF_NAME.match(name or "")
    return match.group(1) if match else None


class FunnelGuard:
    def __init__(
        self,
        *,
        batch: Any,
        ec2: Any,
        store: Any,
        prefix: str,
        job_queue: str,
        compute_environment: str,
        instance_id: str,
    ) -> None:
        self.batch = batch
        self.ec2 = ec2
        self.store = store
        self.prefix = prefix
        self.job_queue = job_queue
        self.compute_environment = compute_environment
        self.instance_id = instance_id

    # -- what is there --------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        found = []
        for status in ACTIVE:
            pages = self.batch.get_paginator("list_jobs").paginate(
                jobQueue=self.job_queue, jobStatus=status
            )
            for page in pages:
                for job in page.get("jobSummaryList", []):
                    created = datetime.fromtimestamp(job["createdAt"] / 1000, UTC)
                    found.append(Job(job["jobId"], run_of(job.get("jobName")), status, created))
        return list({j.job_id: j for j in found}.values())  # a job seen while it moved on

    def stopped(self) -> bool | None:
        server = self._server_state()
        ce = self._compute_environment()
        if server is None or ce is None:
            return None
        return server in SERVER_STOPPED and ce.get("state") == "DISABLED"

    # -- acting ---------------------------------------------------------------------------
    def cancel(self, action: Action) -> list[str]:
        """Terminate the action's Batch jobs (by id, or every one of its run) that have not
        ended; returns those it terminated."""
        active = {j.job_id: j for j in self.jobs()}
        if action.job_ids:
            ids = [i for i in action.job_ids if i in active]
        else:
            ids = [i for i, j in active.items() if action.run_id and j.run_id == action.run_id]
        for job_id in ids:
            self.batch.terminate_job(jobId=job_id, reason=f"cfw guard: {action.reason}"[:256])
        return ids

    def stop(self, action: Action) -> str:
        done = []
        if self._server_state() not in (*SERVER_STOPPED, "terminated", "shutting-down", None):
            self.ec2.stop_instances(InstanceIds=[self.instance_id])
            done.append(f"stopped the Funnel server {self.instance_id}")
        ce = self._compute_environment()
        if ce is not None and ce.get("state") != "DISABLED":
            self.batch.update_compute_environment(
                computeEnvironment=self.compute_environment,
                state="DISABLED",
                computeResources={"minvCpus": 0},
            )
            done.append(
                f"disabled the compute environment {self.compute_environment} "
                "(it starts no instance, and scales in to 0 vCPU)"
            )
        return "; ".join(done) or "the Funnel server and its compute environment were stopped"

    def _server_state(self) -> str | None:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        for reservation in reservations.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                return instance["State"]["Name"]
        return None

    def _compute_environment(self) -> dict[str, Any] | None:
        found = self.batch.describe_compute_environments(
            computeEnvironments=[self.compute_environment]
        ).get("computeEnvironments", [])
        return found[0] if found else None


class TesApiGuard:
    """An existing TES server's tasks of this environment (tag cfw-id)."""

    def __init__(self, *, api: Any, store: Any, prefix: str, env_id: str) -> None:
        self.api = api
        self.store = store
        self.prefix = prefix
        self.env_id = env_id

    def jobs(self) -> list[Job]:
        found, token = [], None
        while True:
            tasks, token = self.api.list_page(
                tags={"cfw-id": self.env_id}, view="BASIC", page_size=2047, page_token=token
            )
            for task in tasks:
                if str(task.state) in TES_ACTIVE:
                    tags = task.tags or {}
                    created = _time(task.creation_time)
                    found.append(Job(task.id, tags.get("cfw-run"), str(task.state), created))
            if not token:
                return found

    def stopped(self) -> bool | None:
        return None

    def cancel(self, action: Action) -> list[str]:
        active = {j.job_id: j for j in self.jobs()}
        if action.job_ids:
            ids = [i for i in action.job_ids if i in active]
        else:
            ids = [i for i, j in active.items() if action.run_id and j.run_id == action.run_id]
        return [i for i in ids if self.api.cancel(i)]

    def stop(self, action: Action) -> str:
        return "nothing that cfw made bills while idle on an existing TES server; nothing to stop"


# -- building one -----------------------------------------------------------------------------
def adapter_for(
    config: Any,
    outputs: Mapping[str, Any],
    session: Any,
    *,
    store: tuple[Any, str] | None = None,
    env_id: str | None = None,
    environ: Mapping[str, str] | None = None,
    state_dir: Any = None,
) -> Any:
    """The adapter of an environment that is up: FunnelGuard for the provisioned server,
    TesApiGuard for an existing one. STORE: the heartbeat store and prefix (default: the
    storage prefix's bucket, through SESSION, a boto3 session)."""
    if store is None:
        bucket, prefix = split_url(str(config.storage.prefix or outputs.get("storage_prefix")))
        store = (S3Store(session.client("s3"), bucket), prefix)
    if not config.provision:
        from pathlib import Path

        from cfw.backends.tes import client

        api = client.connect(config, outputs, Path(state_dir or "."), environ)
        env = str(env_id or outputs["cfw_id"])
        return TesApiGuard(api=api, store=store[0], prefix=store[1], env_id=env)
    return FunnelGuard(
        batch=session.client("batch"),
        ec2=session.client("ec2"),
        store=store[0],
        prefix=store[1],
        job_queue=outputs["job_queue_name"],
        compute_environment=outputs["compute_environment_name"],
        instance_id=outputs["instance_id"],
    )


def from_environ(environ: Mapping[str, str], session: Any) -> FunnelGuard:
    """The adapter the guard's Lambda builds from the variables Terraform gives it
    (modules/aws-guard: CFW_GUARD_STORE, CFW_GUARD_JOB_QUEUE, ...)."""
    bucket, prefix = split_url(environ["CFW_GUARD_STORE"])
    return FunnelGuard(
        batch=session.client("batch"),
        ec2=session.client("ec2"),
        store=S3Store(session.client("s3"), bucket),
        prefix=prefix,
        job_queue=environ["CFW_GUARD_JOB_QUEUE"],
        compute_environment=environ["CFW_GUARD_COMPUTE_ENVIRONMENT"],
        instance_id=environ["CFW_GUARD_INSTANCE"],
    )


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return datetime.now(UTC)

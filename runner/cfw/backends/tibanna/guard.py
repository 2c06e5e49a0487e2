"""The guard's adapter for a Tibanna unicorn (cfw.core.guard_check.Adapter).

- jobs: the RUNNING executions of the environment's own state machine (one unicorn per
  environment, so every execution on it is the environment's). Step Functions executions
  carry no tags: the run is read from the execution's name, which is the Tibanna job id
  cfw gives it (`cfw-<run id>-<jobid>-<rule>-a<attempt>`, translate.jobid_of).
- cancel: StopExecution of each still RUNNING execution, then TerminateInstances of the
  jobs' instances (Tibanna tags them Name=awsem-<jobid>), as TibannaBackend.cancel does.
- stop: nothing of a unicorn bills while idle (Lambdas, a state machine, buckets and a
  table bill per use or per stored byte; each job's instance ends with its job), so a stop
  only says so; stopped() cannot tell anything and answers None.

Zipped into the guard's Lambda (cfw.backends._aws.guard_lambda): standard library, cfw.core
and the boto3 clients it is given; nothing else at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cfw.backends._aws.store import S3Store, split_url
from cfw.core.guard import Action, Job

RUN_OF_NAME = re.compile(r"^cfw-([a-z0-9]+)-")
LIST_PAGE = 1000  # ListExecutions' largest page
DESCRIBE_FILTER_VALUES = 200  # Name tag values per DescribeInstances call
TERMINATE_BATCH = 1000  # instance ids per TerminateInstances call
NOTHING_TO_STOP = (
    "nothing of a Tibanna unicorn bills while idle (no server, no pool: each job's "
    "instance ends with its job); nothing to stop"
)


def run_of(execution_name: str) -> str | None:
    """The cfw run an execution belongs to, from its name; None for a name cfw did not give."""
    match = RUN_OF_NAME.match(execution_name)
    return match.group(1) if match else None


class TibannaGuard:
    def __init__(
        self, *, sfn: Any, ec2: Any, store: Any, prefix: str, state_machine_arn: str
    ) -> None:
        self.sfn = sfn
        self.ec2 = ec2
        self.store = store
        self.prefix = prefix
        self.state_machine_arn = state_machine_arn

    # -- what is there --------------------------------------------------------------------
    def _running(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {
                "stateMachineArn": self.state_machine_arn,
                "statusFilter": "RUNNING",
                "maxResults": LIST_PAGE,
            }
            if token:
                kwargs["nextToken"] = token
            page = self.sfn.list_executions(**kwargs)
            found += page.get("executions", [])
            token = page.get("nextToken")
            if not token:
                return found

    def jobs(self) -> list[Job]:
        return [
            Job(e["name"], run_of(e["name"]), "RUNNING", _utc(e["startDate"]))
            for e in self._running()
        ]

    def stopped(self) -> bool | None:
        return None

    # -- acting ---------------------------------------------------------------------------
    def cancel(self, action: Action) -> list[str]:
        """Stop the action's executions (by job id, or every one of its run) that still
        run, and terminate their instances; returns the executions it stopped."""
        running = {e["name"]: e["executionArn"] for e in self._running()}
        if action.job_ids:
            names = list(action.job_ids)
        else:
            names = [n for n in running if action.run_id and run_of(n) == action.run_id]
        stopped = []
        for name in names:
            arn = running.get(name)
            if arn is None:
                continue  # ended already (or never ours)
            try:
                self.sfn.stop_execution(
                    executionArn=arn, error="Aborted", cause=f"cfw guard: {action.reason}"[:256]
                )
            except self.sfn.exceptions.ExecutionDoesNotExist:
                continue
            stopped.append(name)
        self._terminate(self._instances(names))
        return stopped

    def stop(self, action: Action) -> str:
        return NOTHING_TO_STOP

    def _instances(self, jobids: Sequence[str]) -> list[str]:
        found = []
        for start in range(0, len(jobids), DESCRIBE_FILTER_VALUES):
            chunk = [f"awsem-{j}" for j in jobids[start : start + DESCRIBE_FILTER_VALUES]]
            filters = [
                {"Name": "tag:Name", "Values": chunk},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
            for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    found += [i["InstanceId"] for i in reservation.get("Instances", [])]
        return sorted(set(found))

    def _terminate(self, ids: list[str]) -> None:
        for start in range(0, len(ids), TERMINATE_BATCH):
            self.ec2.terminate_instances(InstanceIds=ids[start : start + TERMINATE_BATCH])


# -- building one -----------------------------------------------------------------------------
STORE_SUBDIR = "cfw"  # of the data bucket: the kind's storage prefix (kind.storage)


def adapter_for(config: Any, outputs: Mapping[str, Any], session: Any) -> TibannaGuard:
    """The adapter of an environment that is up, from its outputs and a boto3 session."""
    return TibannaGuard(
        sfn=session.client("stepfunctions"),
        ec2=session.client("ec2"),
        store=S3Store(session.client("s3"), outputs["data_bucket"]),
        prefix=STORE_SUBDIR,
        state_machine_arn=outputs["state_machine_arn"],
    )


def from_environ(environ: Mapping[str, str], session: Any) -> TibannaGuard:
    """The adapter the guard's Lambda builds from the variables Terraform gives it
    (modules/aws-guard: CFW_GUARD_STORE, CFW_GUARD_STATE_MACHINE)."""
    bucket, prefix = split_url(environ["CFW_GUARD_STORE"])
    return TibannaGuard(
        sfn=session.client("stepfunctions"),
        ec2=session.client("ec2"),
        store=S3Store(session.client("s3"), bucket),
        prefix=prefix,
        state_machine_arn=environ["CFW_GUARD_STATE_MACHINE"],
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

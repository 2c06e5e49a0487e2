"""The tibanna backend: each job a Tibanna execution on the unicorn's state machine."""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfw.backends._aws import session
from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.tibanna import client
from cfw.backends.tibanna.config import TibannaConfig
from cfw.backends.tibanna.status import SPOT_FAILURE, preempted, status_of
from cfw.backends.tibanna.translate import PENDING_VALUE, forwarded_env
from cfw.backends.tibanna.validate import validate_input

# a running execution is asked after its instance this long after submission, and then
# this often (one DescribeInstances for all of them): until one is up, the job is pending
INSTANCE_CHECK_S = 60.0


class TibannaBackend(Backend[TibannaConfig]):
    def __init__(self, ctx: EnvContext[TibannaConfig], clock: Callable[[], float] = time.monotonic):
        super().__init__(ctx)
        self.clock = clock
        self.submitted_at: dict[str, float] = {}
        self.instances: dict[str, str] = {}  # job id -> its instance, once one was seen
        self.no_instance: set[str] = set()  # running executions without an instance yet
        self.instances_checked = 0.0
        sess = session(ctx.config.region, os.environ)
        self.sfn = sess.client("stepfunctions")
        self.s3 = sess.client("s3")
        self.ec2 = sess.client("ec2")
        self.ddb = sess.client("dynamodb")
        self.outputs = ctx.outputs
        self.arns: dict[str, str] = {}  # external id (Tibanna job id) -> execution ARN
        self.finished: dict[str, JobStatus] = {}
        self.spot: set[str] = set()  # jobs on spot instances
        self.cancelled: set[str] = set()  # jobs this run stopped
        self.withheld_warned = False

    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        document = copy.deepcopy(payload)
        env = document["args"]["input_env"]
        for name, value in list(env.items()):
            if value == PENDING_VALUE:
                if name in secrets:
                    env[name] = secrets[name]
                else:
                    del env[name]
        _, withheld = forwarded_env(spec.env, self.ctx.config.pass_env)
        if withheld and not self.withheld_warned:
            self.withheld_warned = True
            print(
                f"cfw: tibanna jobs do not get {', '.join(withheld)}: Tibanna keeps a job's "
                "environment in plain text; jobs reach S3 with their instance role",
                file=sys.stderr,
            )
        validate_input(document, self.outputs.get("region"), self.outputs.get("account_id"))
        jobid = document["jobid"]
        arn = client.start_execution(self.sfn, self.outputs["state_machine_arn"], jobid, document)
        self.arns[jobid] = arn
        self.submitted_at[jobid] = self.clock()
        if document["config"].get("spot_instance"):
            self.spot.add(jobid)
        client.record_job(
            self.ddb,
            self.outputs.get("dynamodb_table", "tibanna-master"),
            jobid,
            jobid,
            self.outputs.get("state_machine_name", ""),
            self.outputs["log_bucket"],
        )
        return jobid

    def _arn(self, jobid: str) -> str:
        return self.arns.get(jobid) or client.execution_arn_for(
            self.outputs["state_machine_arn"], jobid
        )

    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        """One ListExecutions(RUNNING) per 1000 running executions; DescribeExecution only
        for a job seen not running (once: its final status is remembered)."""
        result: dict[str, JobStatus] = {}
        todo = [i for i in external_ids if i not in self.finished]
        running = (
            client.running_executions(self.sfn, self.outputs["state_machine_arn"])
            if todo
            else set()
        )
        for jobid in external_ids:
            if jobid in self.finished:
                result[jobid] = self.finished[jobid]
                continue
            arn = self._arn(jobid)
            if arn in running:
                result[jobid] = JobStatus(JobState.RUNNING)
                continue
            status = status_of(client.describe_execution(self.sfn, arn))
            if jobid in self.spot and jobid not in self.cancelled and status.state.finished:
                lost = client.read_object(
                    self.s3, self.outputs["log_bucket"], f"{jobid}.{SPOT_FAILURE}"
                )
                status = preempted(status, lost is not None)
            if status.state.finished:
                self.finished[jobid] = status
            result[jobid] = status
        return self._waiting_for_instances(result)

    def _waiting_for_instances(self, result: dict[str, JobStatus]) -> dict[str, JobStatus]:
        """A running execution whose instance has not started (run_task waits for
        capacity, behavior_on_capacity_limit) is pending, with why."""
        now = self.clock()
        unknown = [
            j
            for j, s in result.items()
            if s.state == JobState.RUNNING
            and j not in self.instances
            and now - self.submitted_at.get(j, now) >= INSTANCE_CHECK_S
        ]
        if unknown and now - self.instances_checked >= INSTANCE_CHECK_S:
            self.instances_checked = now
            self.instances.update(client.job_instances(self.ec2, unknown))
            self.no_instance = {j for j in unknown if j not in self.instances}
        for jobid in unknown:
            if jobid in self.no_instance:
                result[jobid] = JobStatus(
                    JobState.PENDING,
                    reason=f"the Tibanna execution {jobid} runs but no EC2 instance "
                    f"(awsem-{jobid}) has started for it: no capacity, or an instance limit",
                )
        return result

    def cancel(self, external_ids: Sequence[str]) -> None:
        """Stop each execution and terminate its instance; gone already is fine."""
        ids = list(external_ids)
        self.cancelled.update(ids)
        for jobid in ids:
            client.stop_execution(self.sfn, self._arn(jobid))
        client.terminate(self.ec2, client.job_instances(self.ec2, ids).values())

    def logs(self, external_id: str) -> str:
        """<jobid>.log, then what <jobid>.error, <jobid>.spot_failure and
        <jobid>.postrun.json say about how the job ended, where they exist."""
        bucket = self.outputs["log_bucket"]
        text = client.read_log(self.s3, bucket, external_id)
        outcome = client.job_outcome(self.s3, bucket, external_id)
        if text is None:
            desc = client.describe_execution(self.sfn, self._arn(external_id))
            status = status_of(desc)
            text = (
                f"Tibanna has not written s3://{bucket}/{external_id}.log "
                f"(yet); the execution is {status.state.value}"
                + (f": {status.reason}" if status.reason else "")
                + "\n"
            )
        if not outcome:
            return text
        if not text.endswith("\n"):
            text += "\n"
        return text + "".join(f"--- tibanna: {line}\n" for line in outcome)

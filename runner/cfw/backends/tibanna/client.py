"""The AWS calls of the tibanna kind's jobs (boto3): start, list, describe and stop
executions, the job table's row, the jobs' instances, and the logs in the log bucket.

Imported lazily: only when a tibanna environment runs jobs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cfw.backends._aws import botocore_errors, error_code
from cfw.core.errors import WorkFailed

ClientError = botocore_errors().ClientError

LIST_PAGE = 1000  # ListExecutions' largest page
DESCRIBE_FILTER_VALUES = 200  # values per filter in one DescribeInstances call


# -- executions ------------------------------------------------------------------------------
def start_execution(sfn, state_machine_arn: str, name: str, document: dict[str, Any]) -> str:
    try:
        resp = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    except ClientError as exc:
        if error_code(exc) == "ExecutionAlreadyExists":
            raise WorkFailed(
                f"an execution named {name} already exists on {state_machine_arn}"
            ) from exc
        raise WorkFailed(f"could not start the Tibanna execution {name}: {exc}") from exc
    return resp["executionArn"]


def record_job(ddb, table: str, jobid: str, name: str, sfn_name: str, log_bucket: str) -> None:
    """The row Tibanna's run_workflow writes, so Tibanna's own CLI finds the job."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S-UTC")
    item = {
        "Job Id": {"S": jobid},
        "Execution Name": {"S": name},
        "Step Function": {"S": sfn_name},
        "Log Bucket": {"S": log_bucket},
        "Time Stamp": {"S": stamp},
    }
    with contextlib.suppress(ClientError):  # the table is optional to Tibanna as well
        ddb.put_item(TableName=table, Item=item)


def running_executions(sfn, state_machine_arn: str) -> set[str]:
    """ARNs of the machine's RUNNING executions: one call per page of 1000."""
    arns: set[str] = set()
    token = None
    while True:
        kwargs = {
            "stateMachineArn": state_machine_arn,
            "statusFilter": "RUNNING",
            "maxResults": LIST_PAGE,
        }
        if token:
            kwargs["nextToken"] = token
        resp = sfn.list_executions(**kwargs)
        arns.update(e["executionArn"] for e in resp.get("executions", []))
        token = resp.get("nextToken")
        if not token:
            return arns


def count_running(sfn, state_machine_arn: str) -> int:
    return len(running_executions(sfn, state_machine_arn))


def describe_execution(sfn, arn: str) -> dict[str, Any] | None:
    try:
        return sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if error_code(exc) == "ExecutionDoesNotExist":
            return None
        raise


def stop_execution(sfn, arn: str) -> None:
    try:
        sfn.stop_execution(executionArn=arn, error="Aborted", cause="cancelled by cfw")
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist",):
            return
        raise


def job_instances(ec2, jobids: Sequence[str]) -> dict[str, str]:
    """Instance id per Tibanna job id (run_task tags its instance Name=awsem-<jobid>)."""
    found: dict[str, str] = {}
    for start in range(0, len(jobids), DESCRIBE_FILTER_VALUES):
        chunk = [f"awsem-{j}" for j in jobids[start : start + DESCRIBE_FILTER_VALUES]]
        filters = [
            {"Name": "tag:Name", "Values": chunk},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                    found[tags["Name"].removeprefix("awsem-")] = inst["InstanceId"]
    return found


def terminate(ec2, instance_ids: Iterable[str]) -> None:
    ids = sorted(instance_ids)
    if not ids:
        return
    try:
        ec2.terminate_instances(InstanceIds=ids)
    except ClientError as exc:
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise


def read_object(s3, bucket: str, key: str) -> bytes | None:
    """An object of the log bucket, None when it does not exist (yet)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise


def read_log(s3, bucket: str, jobid: str) -> str | None:
    """Tibanna's log of a job (<jobid>.log in the log bucket), None before it exists."""
    body = read_object(s3, bucket, f"{jobid}.log")
    return None if body is None else body.decode("utf-8", "replace")


# what the job's instance (awsf3) leaves in the log bucket when something went wrong
MARKERS = {
    "error": "awsf3 marked the job failed (a step on the instance exited non-zero)",
    "spot_failure": "AWS announced it would reclaim the spot instance",
}
# fields of <jobid>.postrun.json's Job that say how it ended (awsf3 and check_task set them)
POSTRUN_FIELDS = ("status", "start_time", "end_time", "instance_type", "instance_id")


def job_outcome(s3, bucket: str, jobid: str) -> list[str]:
    """Lines on <jobid>.error, <jobid>.spot_failure and the end of <jobid>.postrun.json,
    for whichever of them exist; [] when none does."""
    lines = []
    for suffix, meaning in MARKERS.items():
        if read_object(s3, bucket, f"{jobid}.{suffix}") is not None:
            lines.append(f"s3://{bucket}/{jobid}.{suffix} exists: {meaning}")
    body = read_object(s3, bucket, f"{jobid}.postrun.json")
    if body is None:
        return lines
    try:
        postrun = json.loads(body)
        job = postrun.get("Job") or {}
    except (ValueError, AttributeError):
        return [*lines, f"s3://{bucket}/{jobid}.postrun.json is not valid JSON"]
    fields = {k: job[k] for k in POSTRUN_FIELDS if job.get(k) not in (None, "")}
    fields.update({k: v for k, v in job.items() if "error" in k.lower() and v})
    fields.update({k: v for k, v in postrun.items() if "error" in k.lower() and v})
    if "status" in fields:  # awsf3 appends each step's exit code: ",0,0,1"
        codes = [c for c in str(fields["status"]).split(",") if c]
        if any(c != "0" for c in codes):
            fields["status"] = f"{fields['status']} (a non-zero exit code: failed)"
    described = ", ".join(f"{k} {v}" for k, v in fields.items()) or "no status"
    lines.append(f"s3://{bucket}/{jobid}.postrun.json: {described}")
    return lines


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name

"""The AWS calls of the tibanna kind (boto3): executions, logs, instances, users, leftovers.

Imported lazily: only when a tibanna environment is used.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cfw.backends._aws import aws_region
from cfw.core.errors import UserError, WorkFailed, missing_sdk

try:
    import boto3
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,  # noqa: F401 (for kind.py)
    )
except ModuleNotFoundError as exc:  # pragma: no cover - the aws extra is missing
    raise missing_sdk(exc.name or "boto3", "aws") from exc

LIST_PAGE = 1000  # ListExecutions' largest page
DESCRIBE_FILTER_VALUES = 200  # values per filter in one DescribeInstances call


def session(config: Any, environ: Mapping[str, str]) -> boto3.session.Session:
    region = config.region or aws_region(environ)
    return boto3.session.Session(region_name=region)


def require_credentials(environ: Mapping[str, str]) -> None:
    try:
        creds = boto3.session.Session().get_credentials()
    except BotoCoreError:
        creds = None
    if creds is None:
        raise UserError(
            "no AWS credentials were found",
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


# -- executions ------------------------------------------------------------------------------
def start_execution(sfn, state_machine_arn: str, name: str, document: dict[str, Any]) -> str:
    try:
        resp = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    except ClientError as exc:
        if _code(exc) == "ExecutionAlreadyExists":
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
        if _code(exc) == "ExecutionDoesNotExist":
            return None
        raise


def stop_execution(sfn, arn: str) -> None:
    try:
        sfn.stop_execution(executionArn=arn, error="Aborted", cause="cancelled by cfw")
    except ClientError as exc:
        if _code(exc) in ("ExecutionDoesNotExist",):
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
        if _code(exc) != "InvalidInstanceID.NotFound":
            raise


def read_object(s3, bucket: str, key: str) -> bytes | None:
    """An object of the log bucket, None when it does not exist (yet)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
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


# -- users ------------------------------------------------------------------------------------
@dataclass
class GroupUsers:
    """Members of the unicorn's IAM group (what `tibanna add_user` manages)."""

    session: boto3.session.Session
    group: str

    @property
    def iam(self):
        return self.session.client("iam")

    def list(self) -> list[str]:
        try:
            users = []
            for page in self.iam.get_paginator("get_group").paginate(GroupName=self.group):
                users += [u["UserName"] for u in page.get("Users", [])]
            return sorted(users)
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                raise UserError(
                    f"the IAM group {self.group} does not exist",
                    "is the environment up? (`cfw status`)",
                ) from exc
            raise

    def add(self, user: str) -> None:
        try:
            self.iam.add_user_to_group(GroupName=self.group, UserName=user)
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                raise UserError(
                    f"no IAM user {user!r} (or no group {self.group})",
                    "give the name of an existing IAM user",
                ) from exc
            raise

    def remove(self, user: str) -> bool:
        """False when the user was not a member (nothing to do)."""
        if user not in self.list():
            return False
        try:
            self.iam.remove_user_from_group(GroupName=self.group, UserName=user)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
        return True


def empty_group(sess: boto3.session.Session, group: str) -> None:
    users = GroupUsers(sess, group)
    try:
        members = users.list()
    except UserError:
        return  # no group: nothing to empty
    for user in members:
        users.remove(user)


# -- the job table every unicorn of an account and region shares ---------------------------
MASTER_TABLE = "tibanna-master"  # Tibanna's DYNAMODB_TABLE: a fixed name in its Lambdas
UNICORN_PREFIX = "tibanna_unicorn_"  # Tibanna's step function names
LEFT_BY = "cfw-left-by"  # tag of a table an environment made and left to other unicorns
CFW_TAGS = ("cfw-env", "cfw-id", "cfw-expires-at")


def table_tags(sess: boto3.session.Session, table: str = MASTER_TABLE) -> dict[str, str] | None:
    """The table's tags; None when it does not exist (Tibanna's own check: DescribeTable)."""
    ddb = sess.client("dynamodb")
    try:
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise
    tags: dict[str, str] = {}
    kwargs: dict[str, str] = {"ResourceArn": arn}
    while True:
        resp = ddb.list_tags_of_resource(**kwargs)
        tags.update({t["Key"]: t["Value"] for t in resp.get("Tags", [])})
        if not resp.get("NextToken"):
            return tags
        kwargs["NextToken"] = resp["NextToken"]


def other_unicorns(sess: boto3.session.Session, own_state_machine: str) -> list[str]:
    """Names of the region's other unicorn state machines (cfw's or deploy_unicorn's): the
    users of the shared job table besides this one."""
    sfn = sess.client("stepfunctions")
    found = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            name = machine["name"]
            if (
                name.startswith(UNICORN_PREFIX)
                and name != own_state_machine
                and not name.endswith("_costupdater")
            ):
                found.append(name)
    return sorted(found)


def hand_over_table(sess: boto3.session.Session, env_id: str, table: str = MASTER_TABLE) -> None:
    """Take this environment's cfw-* tags off the table and say who left it: it is no
    longer the environment's (its leftovers check and its `up` then leave it alone)."""
    ddb = sess.client("dynamodb")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.untag_resource(ResourceArn=arn, TagKeys=list(CFW_TAGS))
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": LEFT_BY, "Value": env_id}])


def delete_table(sess: boto3.session.Session, table: str = MASTER_TABLE) -> None:
    try:
        sess.client("dynamodb").delete_table(TableName=table)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise


# -- verification after destroy -------------------------------------------------------------
def _tags_match(tags: Iterable[Mapping[str, str]] | Mapping[str, str], env_id: str) -> bool:
    if isinstance(tags, Mapping):
        return tags.get("cfw-id") == env_id
    return any(
        (t.get("Key") or t.get("key")) == "cfw-id" and (t.get("Value") or t.get("value")) == env_id
        for t in tags
    )


def leftovers(
    sess: boto3.session.Session, env_id: str, usergroup: str, buckets: Iterable[str]
) -> list[str]:
    """Everything that still carries cfw-id=<env_id> (and the untaggable IAM group)."""
    left: list[str] = []
    prefix = f"tibanna_{usergroup}"
    iam = sess.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if role["RoleName"].startswith(prefix):
                tags = iam.list_role_tags(RoleName=role["RoleName"]).get("Tags", [])
                if _tags_match(tags, env_id):
                    left.append(f"IAM role {role['RoleName']}")
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for pol in page["Policies"]:
            if pol["PolicyName"].startswith(prefix):
                tags = iam.list_policy_tags(PolicyArn=pol["Arn"]).get("Tags", [])
                if _tags_match(tags, env_id):
                    left.append(f"IAM policy {pol['PolicyName']}")
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for prof in page["InstanceProfiles"]:
            if prof["InstanceProfileName"].startswith(prefix) and _tags_match(
                prof.get("Tags", []), env_id
            ):
                left.append(f"IAM instance profile {prof['InstanceProfileName']}")
    try:
        iam.get_group(GroupName=prefix)
        left.append(f"IAM group {prefix}")
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    lam = sess.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if fn["FunctionName"].endswith(f"_{usergroup}"):
                tags = lam.list_tags(Resource=fn["FunctionArn"]).get("Tags", {})
                if _tags_match(tags, env_id):
                    left.append(f"Lambda {fn['FunctionName']}")
    sfn = sess.client("stepfunctions")
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if usergroup in machine["name"]:
                tags = sfn.list_tags_for_resource(resourceArn=machine["stateMachineArn"]).get(
                    "tags", []
                )
                if _tags_match(tags, env_id):
                    left.append(f"state machine {machine['name']}")
    logs = sess.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="/aws/lambda/"
    ):
        for group in page["logGroups"]:
            if group["logGroupName"].endswith(f"_{usergroup}"):
                arn = group["arn"].removesuffix(":*")
                tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
                if _tags_match(tags, env_id):
                    left.append(f"log group {group['logGroupName']}")
    s3 = sess.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in sorted(existing & set(buckets)):
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        except ClientError:
            tags = []
        if _tags_match(tags, env_id):
            left.append(f"S3 bucket {bucket}")
    ddb = sess.client("dynamodb")
    for page in ddb.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
            tags = ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if _tags_match(tags, env_id):
                left.append(f"DynamoDB table {table}")
    return left


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name

"""What an AWS environment (tibanna, tes, the aws-guard module of both) left after
`terraform destroy`: found by the environment's unique cfw-id tag, removed by cfw in an
order AWS accepts, and, for what cannot be removed, why (the AWS error code) and the `aws`
command that removes it.

Identity is the cfw-id tag, always: a kind's name filter only narrows the listing (fewer
calls), it never makes a resource the environment's. The one exception is the untaggable
IAM group of tibanna, which its kind matches by its exact name.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cfw.backends._aws import botocore_errors, error_code

Say = Callable[[str], None]
Match = Callable[[str], bool]

# type -> how it is named in messages
LABELS = {
    "ec2-instance": "EC2 instance",
    "batch-job-queue": "Batch job queue",
    "batch-compute-environment": "Batch compute environment",
    "batch-job-definition": "Batch job definition",
    "state-machine": "state machine",
    "lambda-function": "Lambda function",
    "schedule-group": "schedule group",
    "log-group": "log group",
    "iam-instance-profile": "IAM instance profile",
    "iam-role": "IAM role",
    "iam-policy": "IAM policy",
    "iam-group": "IAM group",
    "s3-bucket": "S3 bucket",
    "dynamodb-table": "DynamoDB table",
    "secret": "secret",
    "ssm-parameter": "SSM parameter",
    "launch-template": "launch template",
    "security-group": "security group",
    "ebs-volume": "EBS volume",
}
# the order of removal: what runs on or refers to a thing goes before it (instances before
# their security groups and volumes, queues before compute environments, profiles and
# roles before the policies attached to them)
ORDER = list(LABELS)
# codes that say the thing is gone already (removed meanwhile, or by an earlier step)
GONE = {
    "NoSuchEntity",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "ParameterNotFound",
    "StateMachineDoesNotExist",
    "InvalidGroup.NotFound",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidVolume.NotFound",
    "InvalidInstanceID.NotFound",
}
# codes that clear up by themselves within seconds (an instance's interface on its group)
BUSY = {"DependencyViolation", "ResourceInUseException", "ConcurrentModificationException"}
BATCH_BUSY = {"CREATING", "UPDATING", "DELETING"}
WAIT_SECONDS = 300.0  # for a Batch queue or compute environment to be deleted


@dataclass(frozen=True)
class Leftover:
    """One resource: its type (a LABELS key), its name, and what the API deletes it by
    (an id or ARN) when that is not the name."""

    type: str
    name: str
    ref: str = ""

    @property
    def key(self) -> str:
        return self.ref or self.name

    def __str__(self) -> str:
        return f"{LABELS[self.type]} {self.name}"


class Refused(Exception):
    """AWS refused a step of a removal: its error code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def has_id(tags: Any, env_id: str) -> bool:
    """Whether TAGS (a dict, or a list of Key/Value or key/value items) say cfw-id=env_id."""
    if isinstance(tags, Mapping):
        return tags.get("cfw-id") == env_id
    return any(
        (t.get("Key") or t.get("key")) == "cfw-id" and (t.get("Value") or t.get("value")) == env_id
        for t in tags or []
    )


def _items(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _everything(_: str) -> bool:
    return True


# -- finding ------------------------------------------------------------------------------
class Finder:
    """Lists, service by service, what carries cfw-id=ENV_ID (each among the names MATCH
    accepts, when given)."""

    def __init__(self, session: Any, env_id: str):
        self.session = session
        self.env_id = env_id
        self.errors = botocore_errors()

    def _client(self, name: str) -> Any:
        return self.session.client(name)

    # EC2 filters by the tag itself
    def _ec2(self, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        tag = [{"Name": "tag:cfw-id", "Values": [self.env_id]}]
        extra = kwargs.pop("Filters", [])
        yield from _items(self._client("ec2"), operation, key, Filters=[*tag, *extra], **kwargs)

    def ec2(self) -> list[Leftover]:
        live = ["pending", "running", "shutting-down", "stopping", "stopped"]
        found = [
            Leftover("ec2-instance", i["InstanceId"])
            for r in self._ec2(
                "describe_instances",
                "Reservations",
                Filters=[{"Name": "instance-state-name", "Values": live}],
            )
            for i in r["Instances"]
        ]
        found += [
            Leftover("security-group", g["GroupId"])
            for g in self._ec2("describe_security_groups", "SecurityGroups")
        ]
        found += [
            Leftover("launch-template", t["LaunchTemplateName"], t["LaunchTemplateId"])
            for t in self._ec2("describe_launch_templates", "LaunchTemplates")
        ]
        found += [
            Leftover("ebs-volume", v["VolumeId"]) for v in self._ec2("describe_volumes", "Volumes")
        ]
        return found

    def buckets(self, match: Match) -> list[Leftover]:
        s3 = self._client("s3")
        found = []
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            if not match(name):
                continue
            try:
                tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
            except self.errors.ClientError as exc:
                if error_code(exc) not in ("NoSuchTagSet", "NoSuchBucket"):
                    raise
                tags = []
            if has_id(tags, self.env_id):
                found.append(Leftover("s3-bucket", name))
        return found

    def tables(self, match: Match = _everything) -> list[Leftover]:
        ddb = self._client("dynamodb")
        found = []
        for name in _items(ddb, "list_tables", "TableNames"):
            if not match(name):
                continue
            try:
                arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
                tags = ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            except self.errors.ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                continue
            if has_id(tags, self.env_id):
                found.append(Leftover("dynamodb-table", name))
        return found

    def batch(self, match: Match) -> list[Leftover]:
        batch = self._client("batch")
        found = [
            Leftover("batch-job-queue", q["jobQueueName"], q["jobQueueArn"])
            for q in _items(batch, "describe_job_queues", "jobQueues")
            if match(q["jobQueueName"])
            and q.get("status") != "DELETED"
            and has_id(q.get("tags"), self.env_id)
        ]
        found += [
            Leftover(
                "batch-compute-environment",
                c["computeEnvironmentName"],
                c["computeEnvironmentArn"],
            )
            for c in _items(batch, "describe_compute_environments", "computeEnvironments")
            if match(c["computeEnvironmentName"])
            and c.get("status") != "DELETED"
            and has_id(c.get("tags"), self.env_id)
        ]
        found += [
            Leftover(
                "batch-job-definition",
                f"{d['jobDefinitionName']}:{d['revision']}",
                d["jobDefinitionArn"],
            )
            for d in _items(batch, "describe_job_definitions", "jobDefinitions", status="ACTIVE")
            if match(d["jobDefinitionName"]) and has_id(d.get("tags"), self.env_id)
        ]
        return found

    def iam(self, match: Match) -> list[Leftover]:
        iam = self._client("iam")
        found = [
            Leftover("iam-role", r["RoleName"])
            for r in _items(iam, "list_roles", "Roles")
            if match(r["RoleName"])
            and has_id(iam.list_role_tags(RoleName=r["RoleName"]).get("Tags"), self.env_id)
        ]
        for profile in _items(iam, "list_instance_profiles", "InstanceProfiles"):
            name = profile["InstanceProfileName"]
            if not match(name):
                continue
            tags = profile.get("Tags")
            if tags is None:  # (not every listing carries them; GetInstanceProfile does)
                detail = iam.get_instance_profile(InstanceProfileName=name)
                tags = detail["InstanceProfile"].get("Tags", [])
            if has_id(tags, self.env_id):
                found.append(Leftover("iam-instance-profile", name))
        found += [
            Leftover("iam-policy", p["PolicyName"], p["Arn"])
            for p in _items(iam, "list_policies", "Policies", Scope="Local")
            if match(p["PolicyName"])
            and has_id(iam.list_policy_tags(PolicyArn=p["Arn"]).get("Tags"), self.env_id)
        ]
        return found

    def group(self, name: str) -> list[Leftover]:
        """An IAM group by its exact name (groups take no tags)."""
        try:
            self._client("iam").get_group(GroupName=name)
        except self.errors.ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            return []
        return [Leftover("iam-group", name)]

    def functions(self, match: Match) -> list[Leftover]:
        lam = self._client("lambda")
        return [
            Leftover("lambda-function", f["FunctionName"])
            for f in _items(lam, "list_functions", "Functions")
            if match(f["FunctionName"])
            and has_id(lam.list_tags(Resource=f["FunctionArn"]).get("Tags"), self.env_id)
        ]

    def state_machines(self, match: Match) -> list[Leftover]:
        sfn = self._client("stepfunctions")
        return [
            Leftover("state-machine", m["name"], m["stateMachineArn"])
            for m in _items(sfn, "list_state_machines", "stateMachines")
            if match(m["name"])
            and has_id(
                sfn.list_tags_for_resource(resourceArn=m["stateMachineArn"]).get("tags"),
                self.env_id,
            )
        ]

    def log_groups(self, prefix: str, match: Match = _everything) -> list[Leftover]:
        logs = self._client("logs")
        found = []
        for group in _items(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=prefix):
            name = group["logGroupName"]
            if not match(name):
                continue
            arn = group["arn"].removesuffix(":*")
            if has_id(logs.list_tags_for_resource(resourceArn=arn).get("tags"), self.env_id):
                found.append(Leftover("log-group", name))
        return found

    def schedule_groups(self, match: Match) -> list[Leftover]:
        scheduler = self._client("scheduler")
        return [
            Leftover("schedule-group", g["Name"])
            for g in _items(scheduler, "list_schedule_groups", "ScheduleGroups")
            if g["Name"] != "default"
            and match(g["Name"])
            and has_id(
                scheduler.list_tags_for_resource(ResourceArn=g["Arn"]).get("Tags"), self.env_id
            )
        ]

    def secrets(self, prefix: str) -> list[Leftover]:
        sm = self._client("secretsmanager")
        by_name = [{"Key": "name", "Values": [prefix]}]
        return [
            Leftover("secret", s["Name"])
            for s in _items(sm, "list_secrets", "SecretList", Filters=by_name)
            if s["Name"].startswith(prefix) and has_id(s.get("Tags"), self.env_id)
        ]

    def parameters(self, path: str) -> list[Leftover]:
        ssm = self._client("ssm")
        under = [{"Key": "Path", "Option": "Recursive", "Values": [path]}]
        found = []
        for parameter in _items(ssm, "describe_parameters", "Parameters", ParameterFilters=under):
            name = parameter["Name"]
            tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
            if has_id(tags.get("TagList"), self.env_id):
                found.append(Leftover("ssm-parameter", name))
        return found


# -- removing -------------------------------------------------------------------------------
def remove(session: Any, found: Iterable[Leftover], env_id: str, say: Say) -> dict[Leftover, str]:
    """Remove FOUND in dependency order, one progress line each; for each that could not
    be removed, why (the AWS error code and message)."""
    errors = botocore_errors()
    failed: dict[Leftover, str] = {}
    for item in sorted(set(found), key=lambda x: (ORDER.index(x.type), x.name)):
        say(f"removing leftover {item} (cfw-id {env_id})")
        try:
            _retrying(lambda item=item: _REMOVERS[item.type](session, item), errors)
        except Refused as exc:
            failed[item] = str(exc)
        except errors.ClientError as exc:
            code = error_code(exc)
            if code in GONE:
                continue
            message = exc.response.get("Error", {}).get("Message", "")
            failed[item] = f"{code}: {message}" if message else code or str(exc)
        except errors.BotoCoreError as exc:
            failed[item] = f"{type(exc).__name__}: {exc}"
    return failed


def _retrying(step: Callable[[], None], errors: Any, attempts: int = 4) -> None:
    for attempt in range(attempts):
        try:
            step()
            return
        except errors.ClientError as exc:
            if error_code(exc) not in BUSY or attempt == attempts - 1:
                raise
            time.sleep(5 * (attempt + 1))


def command(item: Leftover, region: str | None) -> str:
    """The `aws` command that removes ITEM (once what blocked it is out of the way)."""
    q = shlex.quote
    where = f" --region {q(region)}" if region else ""
    key = q(item.key)
    commands = {
        "ec2-instance": f"aws ec2 terminate-instances --instance-ids {key}",
        "batch-job-queue": f"aws batch update-job-queue --job-queue {key} --state DISABLED"
        f"{where} && aws batch delete-job-queue --job-queue {key}",
        "batch-compute-environment": "aws batch update-compute-environment "
        f"--compute-environment {key} --state DISABLED{where} && "
        f"aws batch delete-compute-environment --compute-environment {key}",
        "batch-job-definition": f"aws batch deregister-job-definition --job-definition {key}",
        "state-machine": f"aws stepfunctions delete-state-machine --state-machine-arn {key}",
        "lambda-function": f"aws lambda delete-function --function-name {key}",
        "schedule-group": f"aws scheduler delete-schedule-group --name {key}",
        "log-group": f"aws logs delete-log-group --log-group-name {key}",
        "iam-instance-profile": f"aws iam delete-instance-profile --instance-profile-name {key}",
        "iam-role": f"aws iam delete-role --role-name {key}",
        "iam-policy": f"aws iam delete-policy --policy-arn {key}",
        "iam-group": f"aws iam delete-group --group-name {key}",
        "s3-bucket": _empty_bucket(key),
        "dynamodb-table": f"aws dynamodb delete-table --table-name {key}",
        "secret": f"aws secretsmanager delete-secret --secret-id {key} "
        "--force-delete-without-recovery",
        "ssm-parameter": f"aws ssm delete-parameter --name {key}",
        "launch-template": f"aws ec2 delete-launch-template --launch-template-id {key}",
        "security-group": f"aws ec2 delete-security-group --group-id {key}",
        "ebs-volume": f"aws ec2 delete-volume --volume-id {key}",
    }
    global_ = item.type.startswith("iam-") or item.type == "s3-bucket"
    return commands[item.type] + ("" if global_ else where)


def _empty_bucket(bucket: str) -> str:
    """Every version and delete marker out (`aws s3 rb --force` leaves noncurrent versions,
    so a versioned bucket stays non-empty), 1000 a call (DeleteObjects' limit) until none is
    left, then the bucket."""
    q = shlex.quote
    versions = "[Versions, DeleteMarkers][]"
    count = (
        f"aws s3api list-object-versions --bucket {bucket} --output text "
        f"--query {q(f'length({versions}.Key)')}"
    )
    batch = (
        f"aws s3api list-object-versions --bucket {bucket} --max-items 1000 --output json "
        f"--query {q(f'{{Objects: {versions}.{{Key: Key, VersionId: VersionId}}, Quiet: `true`}}')}"
    )
    return (
        f'until [ "$({count})" = 0 ]; do '
        f'aws s3api delete-objects --bucket {bucket} --delete "$({batch})" || break; done && '
        f"aws s3 rb s3://{bucket}"
    )


def finish(session: Any, find: Callable[[], list[Leftover]], env_id: str, say: Say) -> list[str]:
    """Remove what FIND lists, then list again: one line for each thing still there,
    naming it, why it could not be removed and the command that removes it."""
    found = find()
    if not found:
        return []
    failed = remove(session, found, env_id, say)
    region = getattr(session, "region_name", None)
    return [
        f"{item}: {failed.get(item) or 'still listed after cfw removed it'}; "
        f"remove it with: {command(item, region)}"
        for item in find()
    ]


def _remove_instance(session: Any, item: Leftover) -> None:
    ec2 = session.client("ec2")
    ec2.terminate_instances(InstanceIds=[item.key])
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=[item.key], WaiterConfig={"Delay": 5, "MaxAttempts": 60}
    )


def _wait(describe: Callable[[], list[dict]], what: str, until: Callable[[dict], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not all(until(x) for x in describe()):
        if time.monotonic() > deadline:
            raise Refused("Timeout", f"{what} within {WAIT_SECONDS:g} s")
        time.sleep(2)


def _wait_deleted(describe: Callable[[], list[dict]], what: str) -> None:
    _wait(describe, f"{what} was not deleted", lambda x: x.get("status") == "DELETED")


def _wait_settled(describe: Callable[[], list[dict]], what: str) -> None:
    """Until an update (the state DISABLED) is done: Batch deletes nothing mid-update."""
    _wait(describe, f"{what} stayed busy", lambda x: x.get("status") not in BATCH_BUSY)


def _remove_job_queue(session: Any, item: Leftover) -> None:
    batch = session.client("batch")

    def queues() -> list[dict]:
        return batch.describe_job_queues(jobQueues=[item.key])["jobQueues"]

    if not queues():
        return
    batch.update_job_queue(jobQueue=item.key, state="DISABLED")
    _wait_settled(queues, f"the job queue {item.name}")
    batch.delete_job_queue(jobQueue=item.key)
    _wait_deleted(queues, f"the job queue {item.name}")


def _remove_compute_environment(session: Any, item: Leftover) -> None:
    batch = session.client("batch")

    def envs() -> list[dict]:
        return batch.describe_compute_environments(computeEnvironments=[item.key])[
            "computeEnvironments"
        ]

    if not envs():
        return
    batch.update_compute_environment(computeEnvironment=item.key, state="DISABLED")
    _wait_settled(envs, f"the compute environment {item.name}")
    batch.delete_compute_environment(computeEnvironment=item.key)
    _wait_deleted(envs, f"the compute environment {item.name}")


def _remove_role(session: Any, item: Leftover) -> None:
    iam = session.client("iam")
    role = item.key
    for policy in _items(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role):
        iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    for name in _items(iam, "list_role_policies", "PolicyNames", RoleName=role):
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for profile in _items(
        iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=role
    ):
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=role
        )
    iam.delete_role(RoleName=role)


def _remove_instance_profile(session: Any, item: Leftover) -> None:
    iam = session.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName=item.key)["InstanceProfile"]
    for role in profile.get("Roles", []):
        iam.remove_role_from_instance_profile(
            InstanceProfileName=item.key, RoleName=role["RoleName"]
        )
    iam.delete_instance_profile(InstanceProfileName=item.key)


def _remove_policy(session: Any, item: Leftover) -> None:
    iam = session.client("iam")
    arn = item.key
    for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=arn):
        for role in page.get("PolicyRoles", []):
            iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
        for user in page.get("PolicyUsers", []):
            iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
        for group in page.get("PolicyGroups", []):
            iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
    for version in _items(iam, "list_policy_versions", "Versions", PolicyArn=arn):
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)


def _remove_group(session: Any, item: Leftover) -> None:
    iam = session.client("iam")
    group = item.key
    for user in _items(iam, "get_group", "Users", GroupName=group):
        iam.remove_user_from_group(GroupName=group, UserName=user["UserName"])
    for policy in _items(iam, "list_attached_group_policies", "AttachedPolicies", GroupName=group):
        iam.detach_group_policy(GroupName=group, PolicyArn=policy["PolicyArn"])
    for name in _items(iam, "list_group_policies", "PolicyNames", GroupName=group):
        iam.delete_group_policy(GroupName=group, PolicyName=name)
    iam.delete_group(GroupName=group)


def _remove_bucket(session: Any, item: Leftover) -> None:
    """Every version and delete marker, then the bucket."""
    s3 = session.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=item.key):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(objects), 1000):
            resp = s3.delete_objects(
                Bucket=item.key, Delete={"Objects": objects[start : start + 1000], "Quiet": True}
            )
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise Refused(
                    first.get("Code", "Error"),
                    f"cannot delete object {first.get('Key')!r} "
                    f"({len(resp['Errors'])} object(s) refused): {first.get('Message', '')}"
                    + _lock(s3, item.key, first.get("Key", ""), first.get("VersionId", "")),
                )
    s3.delete_bucket(Bucket=item.key)


def _lock(s3: Any, bucket: str, key: str, version: str) -> str:
    """Why S3 Object Lock keeps KEY, and what lifts it; "" when no lock is the reason.
    HEAD tells both the legal hold and the retention (mode and date) in one call."""
    q = shlex.quote
    ask = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
    try:
        head = s3.head_object(**ask)
    except botocore_errors().ClientError:
        return ""
    where = f"--bucket {q(bucket)} --key {q(key)} --version-id {q(head.get('VersionId', version))}"
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        return (
            "; it is under an Object Lock legal hold: lift it first with "
            f"aws s3api put-object-legal-hold {where} --legal-hold Status=OFF"
        )
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    until = until.isoformat() if hasattr(until, "isoformat") else str(until or "")
    if mode == "GOVERNANCE":
        return (
            f"; it is under Object Lock GOVERNANCE retention until {until}: "
            f"aws s3api delete-object {where} --bypass-governance-retention "
            "(needs s3:BypassGovernanceRetention) deletes it"
        )
    if mode == "COMPLIANCE":
        return (
            f"; it is under Object Lock COMPLIANCE retention until {until}: nobody can "
            "delete it before then, not even the account's root user"
        )
    return ""


def _simple(
    service: str, operation: str, arg: str, **extra: Any
) -> Callable[[Any, Leftover], None]:
    def run(session: Any, item: Leftover) -> None:
        getattr(session.client(service), operation)(**{arg: item.key}, **extra)

    return run


_REMOVERS: dict[str, Callable[[Any, Leftover], None]] = {
    "ec2-instance": _remove_instance,
    "batch-job-queue": _remove_job_queue,
    "batch-compute-environment": _remove_compute_environment,
    "batch-job-definition": _simple("batch", "deregister_job_definition", "jobDefinition"),
    "state-machine": _simple("stepfunctions", "delete_state_machine", "stateMachineArn"),
    "lambda-function": _simple("lambda", "delete_function", "FunctionName"),
    "schedule-group": _simple("scheduler", "delete_schedule_group", "Name"),
    "log-group": _simple("logs", "delete_log_group", "logGroupName"),
    "iam-instance-profile": _remove_instance_profile,
    "iam-role": _remove_role,
    "iam-policy": _remove_policy,
    "iam-group": _remove_group,
    "s3-bucket": _remove_bucket,
    "dynamodb-table": _simple("dynamodb", "delete_table", "TableName"),
    "secret": _simple(
        "secretsmanager", "delete_secret", "SecretId", ForceDeleteWithoutRecovery=True
    ),
    "ssm-parameter": _simple("ssm", "delete_parameter", "Name"),
    "launch-template": _simple("ec2", "delete_launch_template", "LaunchTemplateId"),
    "security-group": _simple("ec2", "delete_security_group", "GroupId"),
    "ebs-volume": _simple("ec2", "delete_volume", "VolumeId"),
}
assert set(_REMOVERS) == set(LABELS)

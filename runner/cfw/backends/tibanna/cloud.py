"""The tibanna kind's account administration (boto3): the credentials check before `up`,
the unicorn's IAM group (`cfw users`), the tibanna-master table every unicorn of an
account and region shares, and what is left of an environment after `down`. No job calls
(those are in client.py).

Imported lazily: only by the kind's hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfw.backends._aws import botocore_errors, error_code, guard_deploy, session
from cfw.core.errors import UserError

if TYPE_CHECKING:
    from boto3.session import Session

_errors = botocore_errors()
BotoCoreError = _errors.BotoCoreError
ClientError = _errors.ClientError
NoCredentialsError = _errors.NoCredentialsError


def require_credentials(environ: Mapping[str, str]) -> None:
    try:
        creds = session(None, environ).get_credentials()
    except BotoCoreError:
        creds = None
    if creds is None:
        raise UserError(
            "no AWS credentials were found",
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )


# -- users ------------------------------------------------------------------------------------
@dataclass
class GroupUsers:
    """Members of the unicorn's IAM group (what `tibanna add_user` manages)."""

    session: Session
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
            if error_code(exc) == "NoSuchEntity":
                raise UserError(
                    f"the IAM group {self.group} does not exist",
                    "is the environment up? (`cfw status`)",
                ) from exc
            raise

    def add(self, user: str) -> None:
        try:
            self.iam.add_user_to_group(GroupName=self.group, UserName=user)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
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
            if error_code(exc) != "NoSuchEntity":
                raise
        return True


def empty_group(sess: Session, group: str) -> None:
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


def table_tags(sess: Session, table: str = MASTER_TABLE) -> dict[str, str] | None:
    """The table's tags; None when it does not exist (Tibanna's own check: DescribeTable)."""
    ddb = sess.client("dynamodb")
    try:
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
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


def other_unicorns(sess: Session, own_state_machine: str) -> list[str]:
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


def hand_over_table(sess: Session, env_id: str, table: str = MASTER_TABLE) -> None:
    """Take this environment's cfw-* tags off the table and say who left it: it is no
    longer the environment's (its leftovers check and its `up` then leave it alone)."""
    ddb = sess.client("dynamodb")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.untag_resource(ResourceArn=arn, TagKeys=list(CFW_TAGS))
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": LEFT_BY, "Value": env_id}])


def delete_table(sess: Session, table: str = MASTER_TABLE) -> None:
    try:
        sess.client("dynamodb").delete_table(TableName=table)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise


# -- verification after destroy -------------------------------------------------------------
def _tags_match(tags: Iterable[Mapping[str, str]] | Mapping[str, str], env_id: str) -> bool:
    if isinstance(tags, Mapping):
        return tags.get("cfw-id") == env_id
    return any(
        (t.get("Key") or t.get("key")) == "cfw-id" and (t.get("Value") or t.get("value")) == env_id
        for t in tags
    )


def leftovers(sess: Session, env_id: str, usergroup: str, buckets: Iterable[str]) -> list[str]:
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
        if error_code(exc) != "NoSuchEntity":
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
    return left + guard_deploy.leftovers(sess, env_id)

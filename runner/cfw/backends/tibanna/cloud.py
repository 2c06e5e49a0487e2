"""The tibanna kind's account administration (boto3): the credentials check before `up`,
the unicorn's IAM group (`cfw users`), the tibanna-master table every unicorn of an
account and region shares, and what is left of an environment after `down`. No job calls
(those are in client.py).

Imported lazily: only by the kind's hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfw.backends._aws import botocore_errors, cleanup, error_code, guard_deploy, session
from cfw.backends._aws.cleanup import Finder, Leftover
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


# -- after destroy: what still carries the environment's id, removed -----------------------
def find(sess: Session, env_id: str, usergroup: str, buckets: Iterable[str]) -> list[Leftover]:
    """Everything of the unicorn that still carries cfw-id=<env_id> (EC2 by the tag alone,
    the rest among the names the module gives it), and the untaggable IAM group by its
    exact name, tibanna_<usergroup>."""
    prefix = f"tibanna_{usergroup}"
    names = set(buckets)
    finder = Finder(sess, env_id)
    return [
        *finder.ec2(),
        *finder.iam(lambda name: name.startswith(prefix)),
        *finder.group(prefix),
        *finder.functions(lambda name: name.endswith(f"_{usergroup}")),
        *finder.state_machines(lambda name: usergroup in name),
        *finder.log_groups("/aws/lambda/", lambda name: name.endswith(f"_{usergroup}")),
        *finder.buckets(lambda name: name in names),
        *finder.tables(),
        *guard_deploy.find(sess, env_id),
    ]


def leftovers(sess: Session, env_id: str, usergroup: str, buckets: Iterable[str]) -> list[str]:
    """:func:`find`, as the lines `cfw down` shows."""
    return [str(item) for item in find(sess, env_id, usergroup, buckets)]


def remove_leftovers(
    sess: Session, env_id: str, usergroup: str, buckets: Iterable[str], say: Callable[[str], None]
) -> list[str]:
    """Remove what :func:`find` lists; what is still there after, each with why and the
    command that removes it."""
    names = list(buckets)
    return cleanup.finish(sess, lambda: find(sess, env_id, usergroup, names), env_id, say)

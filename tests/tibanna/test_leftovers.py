"""`cfw down`'s removal of what Terraform lost track of, for a tibanna environment,
in-process against the worker's moto: what carries the environment's cfw-id goes, and the
untaggable IAM group by its exact name (tibanna_<usergroup>); what carries another id, or
only the environment's name prefix, and any other group, stay."""

from __future__ import annotations

import os
import uuid

import boto3

from cfw.backends.tibanna.config import TibannaConfig
from cfw.backends.tibanna.kind import KIND
from support.aws_tags import tagged
from support.builders import identity
from support.leftovers import EVERYTHING, POLICY, existing, make

CONFIG = TibannaConfig.model_validate({"kind": "tibanna", "region": "us-east-1"})


def env_id() -> str:
    return f"tib-{uuid.uuid4().hex[:6]}"


def group(name: str, user: str) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_group(GroupName=name)
    iam.create_user(UserName=user)
    iam.add_user_to_group(GroupName=name, UserName=user)
    arn = iam.create_policy(PolicyName=f"{name}-users", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName=name, PolicyArn=arn)
    iam.put_group_policy(GroupName=name, PolicyName="inline", PolicyDocument=POLICY)


def groups() -> set[str]:
    iam = boto3.client("iam", region_name="us-east-1")
    return {g["GroupName"] for g in iam.list_groups()["Groups"]}


def test_what_carries_the_id_and_the_group_by_its_exact_name_are_removed(aws_env):
    mine, other = env_id(), env_id()
    prefix = f"tibanna_{mine}"  # the usergroup is the env id (names() when not configured)
    ours = make(prefix, {"cfw-env": "tib", "cfw-id": mine}, bucket=f"cfw-{mine}-data")
    same_env = make(f"{prefix}_b", {"cfw-env": "tib", "cfw-id": other}, bucket=f"cfw-{mine}-logs")
    untagged = make(f"{prefix}_c", {})
    group(prefix, f"alice-{mine}")
    group(f"{prefix}_x", f"bob-{mine}")  # the prefix alone: not the environment's
    group(f"tibanna_{other}", f"carol-{mine}")

    ident = identity("tib", "tibanna", env=mine)
    found = KIND.leftovers(CONFIG, ident, {}, os.environ)
    assert f"IAM group {prefix}" in found and f"S3 bucket cfw-{mine}-data" in found
    assert len(found) == len(EVERYTHING) + 1, found
    said: list[str] = []
    assert KIND.remove_leftovers(CONFIG, ident, {}, os.environ, said.append) == []
    assert f"removing leftover IAM group {prefix} (cfw-id {mine})" in said
    assert existing(ours) == set() and tagged(mine) == []
    assert prefix not in groups() and {f"{prefix}_x", f"tibanna_{other}"} <= groups()
    for untouched in (same_env, untagged):
        assert existing(untouched) == EVERYTHING
    assert KIND.leftovers(CONFIG, ident, {}, os.environ) == []

"""`cfw down`'s removal of what Terraform lost track of, for a provisioned tes environment,
in-process against the worker's moto: what carries the environment's cfw-id goes, in an
order AWS accepts; what carries another id (or the same cfw-env with another id), or only
the environment's name prefix, stays; what AWS refuses to remove is named, with why and
the `aws` command that removes it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from cfw.backends._aws import cleanup
from cfw.backends._aws.cleanup import Leftover
from cfw.backends.tes.config import TesConfig
from cfw.backends.tes.kind import KIND, resource_prefix
from support.aws_tags import tagged
from support.builders import identity
from support.leftovers import EVERYTHING, existing, make

CONFIG = TesConfig.model_validate(
    {"kind": "tes", "region": "us-east-1", "allowed_cidrs": ["203.0.113.0/24"]}
)


def env_id() -> str:
    return f"tes-{uuid.uuid4().hex[:6]}"


def test_what_carries_the_id_is_removed_and_nothing_else(aws_env):
    mine, other = env_id(), env_id()
    prefix = resource_prefix(mine)
    ours = make(f"{prefix}-a", {"cfw-env": "tes", "cfw-id": mine})
    # the environment's names, another id (a cfw-env of the same name); no tags at all
    same_env = make(f"{prefix}-b", {"cfw-env": "tes", "cfw-id": other})
    untagged = make(f"{prefix}-c", {})
    elsewhere = make(f"{resource_prefix(other)}-a", {"cfw-env": "tes", "cfw-id": other})

    iam = boto3.client("iam", region_name="us-east-1")
    with pytest.raises(ClientError, match="DeleteConflict"):  # AWS's order, enforced by moto
        iam.delete_role(RoleName=ours["role"])

    ident = identity("tes", env=mine)
    found = KIND.leftovers(CONFIG, ident, {}, os.environ)
    assert sorted(found) == sorted(
        [
            f"IAM role {ours['role']}",
            f"IAM instance profile {ours['profile']}",
            f"IAM policy {ours['policy']}",
            f"S3 bucket {ours['bucket']}",
            f"launch template {prefix}-a-batch",
            f"security group {ours['security_group']}",
            f"DynamoDB table {ours['table']}",
        ]
    )
    said: list[str] = []
    assert KIND.remove_leftovers(CONFIG, ident, {}, os.environ, said.append) == []
    assert f"removing leftover IAM role {ours['role']} (cfw-id {mine})" in said
    assert len(said) == len(found)
    assert existing(ours) == set()
    assert tagged(mine) == []
    assert KIND.leftovers(CONFIG, ident, {}, os.environ) == []
    for untouched in (same_env, untagged, elsewhere):
        assert existing(untouched) == EVERYTHING
    s3 = boto3.client("s3", region_name="us-east-1")
    versions = s3.list_object_versions(Bucket=same_env["bucket"])
    assert len(versions["Versions"]) == 3 and len(versions["DeleteMarkers"]) == 1


def test_what_aws_refuses_is_named_with_why_and_the_command(aws_env):
    """An object under legal hold (S3 Object Lock) cannot be deleted: nor can its bucket."""
    mine = env_id()
    bucket = f"{resource_prefix(mine)}-locked"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cfw-id", "Value": mine}]})
    s3.put_object(
        Bucket=bucket,
        Key="held.txt",
        Body=b"x",
        ObjectLockLegalHoldStatus="ON",
        ChecksumAlgorithm="SHA256",  # AWS wants a checksum with Object Lock
    )
    ours = make(f"{resource_prefix(mine)}-a", {"cfw-id": mine})

    ident = identity("tes", env=mine)
    said: list[str] = []
    [line] = KIND.remove_leftovers(CONFIG, ident, {}, os.environ, said.append)
    assert line.startswith(f"S3 bucket {bucket}: AccessDenied: cannot delete object 'held.txt'")
    version = s3.list_object_versions(Bucket=bucket)["Versions"][0]["VersionId"]
    assert (
        "it is under an Object Lock legal hold: lift it first with aws s3api "
        f"put-object-legal-hold --bucket {bucket} --key held.txt --version-id {version} "
        "--legal-hold Status=OFF;"
    ) in line
    assert line.endswith(f"remove it with: {cleanup.command(Leftover('s3-bucket', bucket), None)}")
    assert existing(ours) == set()  # the rest went all the same
    assert KIND.leftovers(CONFIG, ident, {}, os.environ) == [f"S3 bucket {bucket}"]


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("GOVERNANCE", "--bypass-governance-retention (needs s3:BypassGovernanceRetention)"),
        ("COMPLIANCE", "nobody can delete it before then"),
    ],
)
def test_retention_says_its_mode_date_and_what_lifts_it(aws_env, mode, says):
    mine = env_id()
    bucket = f"{resource_prefix(mine)}-kept"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cfw-id", "Value": mine}]})
    until = datetime.now(UTC) + timedelta(days=1)
    s3.put_object(
        Bucket=bucket,
        Key="kept",
        Body=b"x",
        ObjectLockMode=mode,
        ObjectLockRetainUntilDate=until,
        ChecksumAlgorithm="SHA256",
    )
    [line] = KIND.remove_leftovers(CONFIG, identity("tes", env=mine), {}, os.environ, print)
    assert f"it is under Object Lock {mode} retention until {until.date()}" in line
    assert says in line


def test_the_bucket_command_empties_every_version_then_removes_the_bucket(aws_env, tmp_path):
    """The command, run by bash as printed, against an `aws` that does what the AWS CLI
    does with these arguments (boto3 on moto; --query is JMESPath on the response)."""
    bucket = f"cfw-{uuid.uuid4().hex[:8]}-versions"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3"):
        s3.put_object(Bucket=bucket, Key="a.txt", Body=body)
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"b")
    s3.delete_object(Bucket=bucket, Key="b.txt")  # a delete marker over b.txt's version

    line = cleanup.command(Leftover("s3-bucket", bucket), None)
    assert "--force" not in line  # `aws s3 rb --force` leaves noncurrent versions behind
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f"#!{sys.executable}\n{AWS_CLI}")
    (bin_dir / "aws").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


# the `aws` calls of the bucket command, as the AWS CLI makes them (a listing of up to 1000)
AWS_CLI = """
import json, sys
import boto3, jmespath
args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1]
s3 = boto3.client("s3")
if args[:2] == ["s3api", "list-object-versions"]:
    most = int(opt("--max-items")) if "--max-items" in args else 1000
    listing = s3.list_object_versions(Bucket=opt("--bucket"), MaxKeys=most)
    found = jmespath.search(opt("--query"), listing)
    print(json.dumps(found, default=str) if opt("--output") == "json" else found)
elif args[:2] == ["s3api", "delete-objects"]:
    out = s3.delete_objects(Bucket=opt("--bucket"), Delete=json.loads(opt("--delete")))
    sys.exit(1 if out.get("Errors") else 0)
elif args[:2] == ["s3", "rb"]:
    s3.delete_bucket(Bucket=args[2].removeprefix("s3://"))
else:
    sys.exit(f"unexpected aws call: {args}")
"""

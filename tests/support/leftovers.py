"""Resources made out of band (boto3, against moto) the way an interrupted `up` leaves
them: a role with an attached managed policy and an inline one, in an instance profile; a
versioned bucket with several versions and a delete marker; a launch template; a security
group; a DynamoDB table. And a check of which of them still exist."""

from __future__ import annotations

import json

import boto3

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def make(
    base: str, tags: dict[str, str], bucket: str | None = None, region: str = "us-east-1"
) -> dict[str, str]:
    """One of each kind of resource, named BASE-... (the bucket BUCKET when given), tagged
    TAGS; their names and ids."""
    s = boto3.session.Session(region_name=region)
    iam, s3, ec2, ddb = s.client("iam"), s.client("s3"), s.client("ec2"), s.client("dynamodb")
    made = {"role": f"{base}-role", "profile": f"{base}-profile", "policy": f"{base}-policy"}
    iam.create_role(RoleName=made["role"], AssumeRolePolicyDocument=TRUST, Tags=_tags(tags))
    arn = iam.create_policy(PolicyName=made["policy"], PolicyDocument=POLICY, Tags=_tags(tags))
    made["policy_arn"] = arn["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=made["role"], PolicyArn=made["policy_arn"])
    iam.put_role_policy(RoleName=made["role"], PolicyName="inline", PolicyDocument=POLICY)
    iam.create_instance_profile(InstanceProfileName=made["profile"], Tags=_tags(tags))
    iam.add_role_to_instance_profile(InstanceProfileName=made["profile"], RoleName=made["role"])

    made["bucket"] = bucket or f"{base}-data"
    s3.create_bucket(Bucket=made["bucket"])
    s3.put_bucket_versioning(Bucket=made["bucket"], VersioningConfiguration={"Status": "Enabled"})
    if tags:
        s3.put_bucket_tagging(Bucket=made["bucket"], Tagging={"TagSet": _tags(tags)})
    for body in (b"one", b"two"):
        s3.put_object(Bucket=made["bucket"], Key="results/x.txt", Body=body)
    s3.put_object(Bucket=made["bucket"], Key="kept.txt", Body=b"kept")
    s3.delete_object(Bucket=made["bucket"], Key="results/x.txt")  # a delete marker

    spec = [{"ResourceType": "launch-template", "Tags": _tags(tags)}] if tags else []
    made["launch_template"] = ec2.create_launch_template(
        LaunchTemplateName=f"{base}-batch",
        LaunchTemplateData={"InstanceType": "t3.micro"},
        TagSpecifications=spec,
    )["LaunchTemplate"]["LaunchTemplateId"]
    spec = [{"ResourceType": "security-group", "Tags": _tags(tags)}] if tags else []
    made["security_group"] = ec2.create_security_group(
        GroupName=f"{base}-server", Description="out of band", TagSpecifications=spec
    )["GroupId"]

    made["table"] = f"{base}-funnel-tasks"
    ddb.create_table(
        TableName=made["table"],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        **({"Tags": _tags(tags)} if tags else {}),
    )
    return made


def existing(made: dict[str, str], region: str = "us-east-1") -> set[str]:
    """Which of MADE's resources (by their keys in MADE) still exist."""
    s = boto3.session.Session(region_name=region)
    iam, s3, ec2, ddb = s.client("iam"), s.client("s3"), s.client("ec2"), s.client("dynamodb")
    there = set()
    if made["role"] in {r["RoleName"] for r in iam.list_roles()["Roles"]}:
        there.add("role")
    profiles = iam.list_instance_profiles()["InstanceProfiles"]
    if made["profile"] in {p["InstanceProfileName"] for p in profiles}:
        there.add("profile")
    if made["policy_arn"] in {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}:
        there.add("policy")
    if made["bucket"] in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        there.add("bucket")
    templates = ec2.describe_launch_templates()["LaunchTemplates"]
    if made["launch_template"] in {t["LaunchTemplateId"] for t in templates}:
        there.add("launch_template")
    groups = ec2.describe_security_groups()["SecurityGroups"]
    if made["security_group"] in {g["GroupId"] for g in groups}:
        there.add("security_group")
    if made["table"] in ddb.list_tables()["TableNames"]:
        there.add("table")
    return there


EVERYTHING = {"role", "profile", "policy", "bucket", "launch_template", "security_group", "table"}

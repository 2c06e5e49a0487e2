"""The AWS side of the `tes` kind (boto3): the provisioned server's credentials and TLS
certificate at run time, and the check after `down` that nothing of the environment is left.
No TES API calls (those are in client.py).

Endpoints come from the standard chain (``AWS_ENDPOINT_URL`` reaches moto, LocalStack or a
private cloud); nothing here is test-specific.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cfw.backends._aws import botocore_errors, error_code, guard_deploy, session
from cfw.core.errors import UserError, WorkFailed

_errors = botocore_errors(extra="tes")
BotoCoreError = _errors.BotoCoreError
ClientError = _errors.ClientError
NoCredentialsError = _errors.NoCredentialsError

CERT_PENDING = "pending"


def read_password(store: str, name: str, region: str, environ: Mapping[str, str]) -> str:
    """A basic-auth password from Secrets Manager or SSM (kept in memory only)."""
    try:
        if store == "ssm":
            ssm = session(region, environ, extra="tes").client("ssm")
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        sm = session(region, environ, extra="tes").client("secretsmanager")
        return sm.get_secret_value(SecretId=name)["SecretString"]
    except NoCredentialsError as exc:
        raise UserError(
            "no AWS credentials to read the Funnel password with",
            "configure AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID), or set "
            "FUNNEL_SERVER_USER and FUNNEL_SERVER_PASSWORD",
        ) from exc
    except ClientError as exc:
        code = error_code(exc) or "error"
        raise UserError(
            f"cannot read the Funnel password {name} from {store} ({code})",
            "check your AWS permissions, or set FUNNEL_SERVER_USER and FUNNEL_SERVER_PASSWORD",
        ) from None


def read_certificate(parameter: str, region: str, environ: Mapping[str, str]) -> str | None:
    """The server's self-signed certificate (PEM), or None while the server boots."""
    try:
        ssm = session(region, environ, extra="tes").client("ssm")
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        raise WorkFailed(
            f"cannot read the server's TLS certificate from SSM {parameter}: {exc}"
        ) from None
    return None if value.strip() == CERT_PENDING else value


# -- after destroy: what still carries the environment's id ---------------------------------
def _items(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def leftovers(
    region: str | None, env_id: str, prefix: str, environ: Mapping[str, str]
) -> list[str]:
    """Resources of the environment that still exist: EC2 by the cfw-id tag, the others by
    their names, which all start with the environment's prefix (cfw-<env id>)."""
    aws = session(region, environ, extra="tes")
    found: list[str] = []
    ec2 = aws.client("ec2")
    tag = [{"Name": "tag:cfw-id", "Values": [env_id]}]
    live = ["pending", "running", "shutting-down", "stopping", "stopped"]
    for reservation in _items(
        ec2,
        "describe_instances",
        "Reservations",
        Filters=[*tag, {"Name": "instance-state-name", "Values": live}],
    ):
        found += [f"ec2 instance {i['InstanceId']}" for i in reservation["Instances"]]
    found += [
        f"security group {g['GroupId']}"
        for g in _items(ec2, "describe_security_groups", "SecurityGroups", Filters=tag)
    ]
    found += [
        f"launch template {t['LaunchTemplateName']}"
        for t in _items(ec2, "describe_launch_templates", "LaunchTemplates", Filters=tag)
    ]
    found += [
        f"ebs volume {v['VolumeId']}"
        for v in _items(ec2, "describe_volumes", "Volumes", Filters=tag)
    ]

    s3 = aws.client("s3")
    found += [
        f"s3 bucket {b['Name']}"
        for b in s3.list_buckets().get("Buckets", [])
        if b["Name"].startswith(f"{prefix}-")
    ]

    dynamodb = aws.client("dynamodb")
    found += [
        f"dynamodb table {name}"
        for name in _items(dynamodb, "list_tables", "TableNames")
        if name.startswith(f"{prefix}-")
    ]

    batch = aws.client("batch")
    found += [
        f"batch job queue {q['jobQueueName']}"
        for q in _items(batch, "describe_job_queues", "jobQueues")
        if q["jobQueueName"].startswith(f"{prefix}-") and q.get("status") != "DELETED"
    ]
    found += [
        f"batch compute environment {c['computeEnvironmentName']}"
        for c in _items(batch, "describe_compute_environments", "computeEnvironments")
        if c["computeEnvironmentName"].startswith(f"{prefix}-") and c.get("status") != "DELETED"
    ]
    found += [
        f"batch job definition {d['jobDefinitionName']}:{d['revision']}"
        for d in _items(batch, "describe_job_definitions", "jobDefinitions", status="ACTIVE")
        if d["jobDefinitionName"].startswith(f"{prefix}-")
    ]

    iam = aws.client("iam")
    found += [
        f"iam role {r['RoleName']}"
        for r in _items(iam, "list_roles", "Roles")
        if r["RoleName"].startswith(f"{prefix}-")
    ]
    found += [
        f"iam instance profile {p['InstanceProfileName']}"
        for p in _items(iam, "list_instance_profiles", "InstanceProfiles")
        if p["InstanceProfileName"].startswith(f"{prefix}-")
    ]

    sm = aws.client("secretsmanager")
    found += [
        f"secret {s['Name']}"
        for s in _items(
            sm, "list_secrets", "SecretList", Filters=[{"Key": "name", "Values": [f"{prefix}/"]}]
        )
        if s["Name"].startswith(f"{prefix}/")
    ]

    ssm = aws.client("ssm")
    found += [
        f"ssm parameter {p['Name']}"
        for p in _items(
            ssm,
            "describe_parameters",
            "Parameters",
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [f"/{prefix}"]}],
        )
    ]
    return found + guard_deploy.leftovers(aws, env_id, roles=False)  # (roles: listed above)

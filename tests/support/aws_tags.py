"""What carries a given cfw-id tag in an AWS account (moto here), listed service by service
by the tag itself: the tests' own check that `cfw down` left nothing behind."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


def _pages(client: Any, operation: str, key: str, **kwargs: Any):
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _has(tags: Any, env_id: str) -> bool:
    if isinstance(tags, dict):
        return tags.get("cfw-id") == env_id
    return any(
        t.get("Key", t.get("key")) == "cfw-id" and t.get("Value", t.get("value")) == env_id
        for t in tags or []
    )


def tagged(env_id: str, region: str = "us-east-1") -> list[str]:
    s = boto3.session.Session(region_name=region)
    found: list[str] = []
    ec2 = s.client("ec2")
    by_tag = [{"Name": "tag:cfw-id", "Values": [env_id]}]
    for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=by_tag):
        found += [
            f"instance {i['InstanceId']}"
            for i in reservation["Instances"]
            if i["State"]["Name"] != "terminated"
        ]
    found += [
        f"security-group {g['GroupId']}"
        for g in _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=by_tag)
    ]
    found += [
        f"launch-template {t['LaunchTemplateId']}"
        for t in _pages(ec2, "describe_launch_templates", "LaunchTemplates", Filters=by_tag)
    ]
    found += [
        f"volume {v['VolumeId']}"
        for v in _pages(ec2, "describe_volumes", "Volumes", Filters=by_tag)
    ]
    s3 = s.client("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except ClientError:
            continue
        if _has(tags, env_id):
            found.append(f"bucket {bucket['Name']}")
    dynamodb = s.client("dynamodb")
    for name in _pages(dynamodb, "list_tables", "TableNames"):
        arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
        if _has(dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags"), env_id):
            found.append(f"table {name}")
    batch = s.client("batch")
    found += [
        f"compute-environment {c['computeEnvironmentName']}"
        for c in _pages(batch, "describe_compute_environments", "computeEnvironments")
        if _has(c.get("tags"), env_id)
    ]
    found += [
        f"job-queue {q['jobQueueName']}"
        for q in _pages(batch, "describe_job_queues", "jobQueues")
        if _has(q.get("tags"), env_id)
    ]
    found += [
        f"job-definition {d['jobDefinitionArn']}"
        for d in _pages(batch, "describe_job_definitions", "jobDefinitions", status="ACTIVE")
        if _has(d.get("tags"), env_id)
    ]
    iam = s.client("iam")
    for role in _pages(iam, "list_roles", "Roles"):
        if _has(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"), env_id):
            found.append(f"role {role['RoleName']}")
    for profile in _pages(iam, "list_instance_profiles", "InstanceProfiles"):
        # (GetInstanceProfile has the tags; moto lacks ListInstanceProfileTags)
        detail = iam.get_instance_profile(InstanceProfileName=profile["InstanceProfileName"])
        if _has(detail["InstanceProfile"].get("Tags"), env_id):
            found.append(f"instance-profile {profile['InstanceProfileName']}")
    for policy in _pages(iam, "list_policies", "Policies", Scope="Local"):
        if _has(iam.list_policy_tags(PolicyArn=policy["Arn"]).get("Tags"), env_id):
            found.append(f"policy {policy['PolicyName']}")
    sfn = s.client("stepfunctions")
    for machine in _pages(sfn, "list_state_machines", "stateMachines"):
        tags = sfn.list_tags_for_resource(resourceArn=machine["stateMachineArn"]).get("tags")
        if _has(tags, env_id):
            found.append(f"state-machine {machine['name']}")
    found += [
        f"secret {x['Name']}"
        for x in _pages(s.client("secretsmanager"), "list_secrets", "SecretList")
        if _has(x.get("Tags"), env_id)
    ]
    lam = s.client("lambda")
    for function in _pages(lam, "list_functions", "Functions"):
        if _has(lam.list_tags(Resource=function["FunctionArn"]).get("Tags"), env_id):
            found.append(f"function {function['FunctionName']}")
    logs = s.client("logs")
    for group in _pages(logs, "describe_log_groups", "logGroups"):
        tags = logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))
        if _has(tags.get("tags"), env_id):
            found.append(f"log-group {group['logGroupName']}")
    scheduler = s.client("scheduler")
    for group in _pages(scheduler, "list_schedule_groups", "ScheduleGroups"):
        if group["Name"] == "default":
            continue
        tags = scheduler.list_tags_for_resource(ResourceArn=group["Arn"]).get("Tags")
        if _has(tags, env_id):
            found.append(f"schedule-group {group['Name']}")
    ssm = s.client("ssm")
    for parameter in _pages(ssm, "describe_parameters", "Parameters"):
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=parameter["Name"])
        if _has(tags.get("TagList"), env_id):
            found.append(f"parameter {parameter['Name']}")
    return sorted(found)

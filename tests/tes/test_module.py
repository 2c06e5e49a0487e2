"""modules/aws-funnel and the `tes` root module: static checks (validate, checkov's
coverage; what every module shares is tests/core/test_modules.py's), then `cfw up` /
`cfw down` against moto — one full cycle, and a `down` after an `up` that failed half-way;
after each `down` nothing tagged with the environment's cfw-id is left (listed by the tests
themselves, service by service)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from cfw.backends._aws import guard_lambda, guard_zip
from cfw.backends.kind import Identity
from cfw.backends.tes.config import TesConfig
from cfw.backends.tes.kind import KIND
from cfw.core.guard import parse_expires_at
from conftest import REPO
from support.aws_tagging import resource_schemas, untagged
from support.aws_tags import tagged
from support.batch_jobs import held, submit_as_funnel
from support.batch_jobs import status as batch_status
from support.checkov import module_report
from support.leftovers import EVERYTHING, existing, make
from support.render import render_example

MODULE = REPO / "modules" / "aws-funnel"


def test_readme_calls_the_module_funnel():
    """(Files, fmt, parse, variables, the README's example: tests/core/test_modules.py.)"""
    assert 'module "funnel"' in (MODULE / "README.md").read_text()


@pytest.fixture(scope="module")
def initialised_root(tmp_path_factory, terraform_env) -> Path:
    out = render_example("tes", tmp_path_factory.mktemp("root") / "tes")
    init = ["terraform", "init", "-backend=false", "-input=false", "-no-color"]
    env = {**os.environ, **terraform_env}  # (the autouse fixture sets them per test only)
    proc = subprocess.run(init, cwd=out, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_rendered_root_validates_with_the_aws_provider(initialised_root):
    proc = subprocess.run(
        ["terraform", "validate", "-no-color"],
        cwd=initialised_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_aws_resource_of_the_modules_carries_the_tags(initialised_root, tmp_path):
    """Every resource type that takes tags (the provider's schema says) sets var.tags, of
    cfw-id among them, in modules/aws-funnel, aws-guard and aws-tibanna; the others are
    known to go with what carries them. An untagged resource type fails the check."""
    schemas = resource_schemas(initialised_root)
    for module in ("aws-funnel", "aws-guard", "aws-tibanna"):
        assert untagged(REPO / "modules" / module, schemas) == [], module
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "main.tf").write_text(
        'resource "aws_sqs_queue" "this" {\n  name = "q"\n}\n'
        'resource "aws_sns_topic" "this" {\n  name = "t"\n  tags = { a = "b" }\n}\n'
        'resource "aws_iam_user_policy_attachment" "this" {\n'
        '  user       = "u"\n  policy_arn = "p"\n}\n'
    )
    assert untagged(bad, schemas) == [
        "aws_sqs_queue.this: takes tags but does not set tags = var.tags",
        "aws_sns_topic.this: takes tags but does not set tags = var.tags",
        "aws_iam_user_policy_attachment.this: takes no tags and is not known to go with what does",
    ]


def test_url_mode_root_needs_no_provider(tmp_path):
    from cfw.orchestration.lifecycle import Lifecycle

    project = tmp_path / "p"
    (project / "environments").mkdir(parents=True)
    (project / "environments" / "tes.yaml").write_text(
        yaml.safe_dump(
            {"kind": "tes", "url": "https://tes.example.org", "storage": {"prefix": "s3://b/p"}}
        )
    )
    lifecycle = Lifecycle(project, environ={})
    from cfw.backends.registry import resolve

    out = lifecycle.render_to(resolve(project, "tes", environ={}), tmp_path / "root")
    main = (out / "main.tf").read_text()
    assert 'provider "' not in main and "required_providers" not in main and 'module "' not in main
    values = json.loads((out / "terraform.tfvars.json").read_text())
    assert values["url"] == "https://tes.example.org" and "user_data" not in values
    for args in (
        ["init", "-backend=false", "-input=false", "-no-color"],
        ["validate", "-no-color"],
    ):
        proc = subprocess.run(
            ["terraform", *args], cwd=out, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_checks_the_module_and_skips_some():
    """Clean and reasoned: tests/core/test_modules.py; here, that checkov saw the module."""
    report = module_report(MODULE)
    assert report["results"]["skipped_checks"] and report["summary"]["passed"] > 50


# -- against moto ---------------------------------------------------------------------------
def check_the_guard(env_id: str, outputs: dict, password: str) -> None:
    """What `up` made of the guard (schedule, function, role), then one check by the
    function's handler, invoked here with the function's own environment (moto runs no
    Lambda): past the ttl (2m: `up` took longer), a queued job of a run whose runner is
    gone is terminated, the Funnel server stopped and the compute environment disabled."""
    sess = boto3.session.Session(region_name="us-east-1")
    name = f"cfw-{env_id}-guard"
    conf = sess.client("lambda").get_function(FunctionName=name)["Configuration"]
    assert conf["Handler"] == guard_zip.HANDLER and conf["Runtime"].startswith("python3")
    assert conf["CodeSha256"] == guard_zip.digest("cfw.backends.tes.guard")
    variables = conf["Environment"]["Variables"]
    assert variables["CFW_GUARD_ADAPTER"] == "cfw.backends.tes.guard:from_environ"
    assert variables["CFW_GUARD_INSTANCE"] == outputs["instance_id"]
    assert (variables["CFW_GUARD_INTERVAL"], variables["CFW_GUARD_ORPHAN_AFTER"]) == ("300", "900")
    assert password not in json.dumps(variables)
    assert not any(k for k in variables if "SECRET" in k or "PASSWORD" in k or "KEY" in k)
    schedule = sess.client("scheduler").get_schedule(GroupName=name, Name=f"{name}-check")
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["Target"]["Arn"] == conf["FunctionArn"] and schedule["State"] == "ENABLED"
    iam = sess.client("iam")
    assert conf["Role"].endswith(f":role/{name}-function")
    policy = iam.get_role_policy(RoleName=f"{name}-function", PolicyName=f"{name}-function")
    statements = policy["PolicyDocument"]["Statement"]
    actions = {a for st in statements for a in _listed(st["Action"])}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "batch:ListJobs",
        "batch:DescribeComputeEnvironments",
        "ec2:DescribeInstances",
        "batch:TerminateJob",
        "batch:UpdateComputeEnvironment",
        "ec2:StopInstances",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    for st in statements:
        if set(_listed(st["Action"])) & {"ec2:StopInstances", "batch:UpdateComputeEnvironment"}:
            assert all(
                outputs["instance_id"] in r or outputs["compute_environment_name"] in r
                for r in _listed(st["Resource"])
            )

    batch = sess.client("batch")
    with held(os.environ["AWS_ENDPOINT_URL"]):
        job = submit_as_funnel(
            batch, outputs["job_queue_name"], outputs["job_definition_name"], "cfw-0101120000ab-1-a"
        )
        expires = parse_expires_at(variables["CFW_GUARD_EXPIRES_AT"])
        now = max(datetime.now(UTC), expires + timedelta(minutes=1))
        result = guard_lambda.run(variables, sess, now=now)
        assert result["errors"] == [], result
        assert [(a["action"], a["cause"]) for a in result["actions"]] == [
            ("cancel", "ttl"),
            ("stop", "ttl"),
        ]
        assert batch_status(batch, job) == "FAILED"
    instance = sess.client("ec2").describe_instances(InstanceIds=[outputs["instance_id"]])
    assert instance["Reservations"][0]["Instances"][0]["State"]["Name"] in ("stopping", "stopped")
    ce = batch.describe_compute_environments(
        computeEnvironments=[outputs["compute_environment_name"]]
    )["computeEnvironments"][0]
    assert ce["state"] == "DISABLED" and ce["computeResources"]["minvCpus"] == 0
    bucket, prefix = outputs["storage_prefix"].removeprefix("s3://").split("/", 1)
    record = json.loads(
        sess.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/.cfw/guard.json")["Body"].read()
    )
    assert record["stopped_cause"] == "ttl"


def _listed(value):
    return [value] if isinstance(value, str) else list(value)


def project_for(tmp_path: Path, **extra) -> Path:
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True)
    config = {
        "kind": "tes",
        "region": "us-east-1",
        "allowed_cidrs": ["203.0.113.0/24", "2001:db8::/64"],
        "ttl": "2m",
        **extra,
    }
    (project / "environments" / "tes.yaml").write_text(yaml.safe_dump(config))
    return project


def env_id_of(project: Path) -> str:
    return json.loads((project / ".cfw" / "tes" / "cfw.json").read_text())["env_id"]


@pytest.mark.moto
def test_up_and_down_against_moto(tmp_path, cfw, aws_env):
    project = project_for(tmp_path)
    up = cfw(["up", "tes", "--yes"], project)
    assert up.code == 0, up.output[-4000:]
    env_id = env_id_of(project)
    state = project / ".cfw" / "tes"
    outputs = json.loads((state / "outputs.json").read_text())
    assert outputs["tes_url"].startswith("https://")
    assert f"tes_url = {outputs['tes_url']}" in up.output
    assert "basic_auth_names" in up.output  # where the credentials are

    # the generated password exists in Secrets Manager and nowhere cfw wrote or printed
    secret = outputs["basic_auth_names"]["cfw"]
    password = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
        SecretId=secret
    )["SecretString"]
    assert len(password) == 32
    assert password not in up.output
    for path in state.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            assert password.encode() not in path.read_bytes(), path

    # the server's rendered config names what the module made
    user_data = yaml.safe_load(
        json.loads((state / "terraform.tfvars.json").read_text())["user_data"]
    )
    funnel = yaml.safe_load(
        next(
            f["content"]
            for f in user_data["write_files"]
            if f["path"] == "/etc/funnel/funnel.yml.in"
        )
    )
    assert funnel["DynamoDB"]["TableBasename"] == outputs["table_basename"]
    assert funnel["AWSBatch"]["JobQueue"] == outputs["job_queue_name"]
    assert funnel["AWSBatch"]["JobDefinition"] == outputs["job_definition_name"]

    # what the issue asks of the resources
    batch = boto3.client("batch", region_name="us-east-1")
    ce = batch.describe_compute_environments(
        computeEnvironments=[outputs["compute_environment_name"]]
    )["computeEnvironments"][0]
    assert ce["computeResources"]["minvCpus"] == 0 and ce["computeResources"]["maxvCpus"] == 64
    ec2 = boto3.client("ec2", region_name="us-east-1")
    instance = ec2.describe_instances(InstanceIds=[outputs["instance_id"]])["Reservations"][0][
        "Instances"
    ][0]
    group_ids = [
        g["GroupId"]
        for g in instance.get("SecurityGroups") or instance["NetworkInterfaces"][0]["Groups"]
    ]
    assert len(group_ids) == 1
    group = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"][0]
    assert [(p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]] == [(443, 443)] * len(
        group["IpPermissions"]
    )
    opened = {r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])} | {
        r["CidrIpv6"] for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])
    }
    assert opened == {"203.0.113.0/24", "2001:db8::/64"}
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance.get("IamInstanceProfile")

    # every resource carries the id; cfw's own check sees each kind of resource
    before = tagged(env_id)
    kinds = {item.split()[0] for item in before}
    assert kinds >= {
        "instance",
        "security-group",
        "launch-template",
        "bucket",
        "table",
        "compute-environment",
        "job-queue",
        "job-definition",
        "role",
        "instance-profile",
        "secret",
        "parameter",
        "function",
        "log-group",
        "schedule-group",
    }, before
    config = TesConfig.model_validate(
        yaml.safe_load((project / "environments" / "tes.yaml").read_text())
    )
    ident = Identity("tes", "tes", env_id, None, None)
    seen = KIND.leftovers(config, ident, outputs, os.environ)
    assert len(seen) >= len(before) - 1, (seen, before)  # (the root volume dies with the instance)

    check_the_guard(env_id, outputs, password)

    status = cfw(["status", "tes", "--json"], project)
    assert status.code == 0, status.output
    [row] = json.loads(status.stdout)
    assert (row["name"], row["kind"], row["state"]) == ("tes", "tes", "up"), row
    assert row["resources"] > 0
    # no Funnel boots in moto: the server's details say why it does not answer
    assert "not published its TLS certificate" in row["details"]["server"], row["details"]
    shown = cfw(["status", "tes"], project)
    assert shown.code == 0 and "tes: server: not answering" in shown.output, shown.output

    # what Terraform does not know of but carries the environment's id (as an interrupted
    # `up` leaves it) goes too; the same with another id, or the prefix alone, stays. An
    # object under legal hold keeps its bucket: `down` names it, why, and the command
    ours = make(f"cfw-{env_id}-oob", {"cfw-env": "tes", "cfw-id": env_id})
    theirs = make(f"cfw-{env_id}-theirs", {"cfw-env": "tes", "cfw-id": f"{env_id}x"})
    locked = f"cfw-{env_id}-locked"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    s3.put_bucket_tagging(Bucket=locked, Tagging={"TagSet": [{"Key": "cfw-id", "Value": env_id}]})
    held = s3.put_object(
        Bucket=locked,
        Key="held",
        Body=b"x",
        ObjectLockLegalHoldStatus="ON",
        ChecksumAlgorithm="SHA256",  # AWS wants a checksum with Object Lock
    )

    down = cfw(["down", "tes", "--yes"], project)
    assert down.code == 1, down.output[-4000:]
    assert f"removing leftover IAM role {ours['role']} (cfw-id {env_id})" in down.stderr
    assert (
        f"left behind: S3 bucket {locked}: AccessDenied: cannot delete object 'held'" in down.stderr
    )
    assert "it is under an Object Lock legal hold: lift it first with" in down.stderr
    assert f"aws s3api delete-objects --bucket {locked} " in down.stderr
    assert f"&& aws s3 rb s3://{locked}" in down.stderr
    assert "run `cfw down tes` again" not in down.output
    assert tagged(env_id) == [f"bucket {locked}"]
    assert existing(ours) == set() and existing(theirs) == EVERYTHING

    s3.put_object_legal_hold(
        Bucket=locked, Key="held", VersionId=held["VersionId"], LegalHold={"Status": "OFF"}
    )
    down = cfw(["down", "tes", "--yes"], project)
    assert down.code == 0, down.output[-4000:]
    assert f"removing leftover S3 bucket {locked}" in down.stderr
    assert tagged(env_id) == []
    assert existing(theirs) == EVERYTHING
    assert not state.exists()
    again = cfw(["down", "tes", "--yes"], project)
    assert again.code == 0 and "nothing to destroy" in again.output


@pytest.mark.moto
def test_down_after_a_half_failed_up(tmp_path, cfw, aws_env):
    # a type only AWS knows is not there (m9 does not exist; its form is valid, so cfw
    # passes it): the compute environment fails after much else exists
    project = project_for(
        tmp_path, batch={"instance_types": ["m9.xlarge"]}, credentials_store="ssm"
    )
    up = cfw(["up", "tes", "--yes"], project)
    assert up.code == 1, up.output[-4000:]
    assert "cfw down tes" in up.output
    env_id = env_id_of(project)
    assert tagged(env_id), "the failed up created nothing: the test does not test a half-up"
    status = cfw(["status", "tes", "--json"], project)
    assert json.loads(status.stdout)[0]["state"] == "half-up"
    down = cfw(["down", "tes", "--yes"], project)
    assert down.code == 0, down.output[-4000:]
    assert tagged(env_id) == []

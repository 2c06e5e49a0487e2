"""The tes guard's adapter for the provisioned Funnel (cfw.backends.tes.guard.FunnelGuard)
against moto: a compute environment, job queue and job definition as modules/aws-funnel
makes them, the server's instance, Batch jobs submitted as Funnel submits them (moto's job
progression is held, so that they stay SUBMITTED as behind a busy queue), heartbeats in S3;
the checks of cfw.core.guard_check.check with the clock moved forward instead of waited for.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from cfw.backends._aws.store import S3Store
from cfw.backends.tes.guard import FunnelGuard, run_of
from cfw.core import guard_check, heartbeat
from cfw.core.guard import CANCEL, STOP, Action, Settings
from support.batch_jobs import held, submit_as_funnel
from support.batch_jobs import status as batch_status

pytestmark = pytest.mark.moto

RUN, OTHER = "0101120000ab", "0101120000cd"
ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "batch.amazonaws.com"},
        }
    ],
}


@pytest.fixture
def held_jobs(aws_env):
    with held(aws_env["AWS_ENDPOINT_URL"]):
        yield


def funnel(tag: str) -> dict[str, str]:
    """What modules/aws-funnel makes that the guard touches, made in moto directly."""
    sess = boto3.session.Session(region_name="us-east-1")
    ec2, iam, batch = sess.client("ec2"), sess.client("iam"), sess.client("batch")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnet = subnets["Subnets"][0]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"{tag}-batch", Description="batch", VpcId=vpc["VpcId"]
    )["GroupId"]
    role = iam.create_role(RoleName=f"{tag}-batch", AssumeRolePolicyDocument=json.dumps(ASSUME))
    profile = iam.create_instance_profile(InstanceProfileName=f"{tag}-batch")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{tag}-batch", RoleName=f"{tag}-batch")
    ce = batch.create_compute_environment(
        computeEnvironmentName=f"{tag}-ce",
        type="MANAGED",
        state="ENABLED",
        serviceRole=role["Role"]["Arn"],
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "desiredvCpus": 0,
            "maxvCpus": 64,
            "instanceTypes": ["optimal"],
            "instanceRole": profile["InstanceProfile"]["Arn"],
            "subnets": [subnet],
            "securityGroupIds": [group],
        },
    )
    queue = batch.create_job_queue(
        jobQueueName=f"{tag}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    definition = batch.register_job_definition(
        jobDefinitionName=f"{tag}-worker",
        type="container",
        containerProperties={
            "image": "quay.io/ohsu-comp-bio/funnel:0.11.0",
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
            "command": ["worker", "run", "--taskID", "Ref::taskID"],
        },
    )
    image = ec2.describe_images()["Images"][0]["ImageId"]
    server = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    return {
        "compute_environment": ce["computeEnvironmentName"],
        "job_queue": queue["jobQueueName"],
        "job_definition": definition["jobDefinitionArn"],
        "instance_id": server["InstanceId"],
    }


@pytest.fixture
def guard(aws_env, held_jobs):
    sess = boto3.session.Session(region_name="us-east-1")
    tag = f"cfw-g{uuid.uuid4().hex[:8]}"
    made = funnel(tag)
    s3 = sess.client("s3")
    s3.create_bucket(Bucket=f"{tag}-data")
    adapter = FunnelGuard(
        batch=sess.client("batch"),
        ec2=sess.client("ec2"),
        store=S3Store(s3, f"{tag}-data"),
        prefix="cfw",
        job_queue=made["job_queue"],
        compute_environment=made["compute_environment"],
        instance_id=made["instance_id"],
    )
    adapter.job_definition = made["job_definition"]
    return adapter


def submit(guard: FunnelGuard, name: str) -> str:
    return submit_as_funnel(guard.batch, guard.job_queue, guard.job_definition, name)


def status(guard: FunnelGuard, job_id: str) -> str:
    return batch_status(guard.batch, job_id)


def server_state(guard: FunnelGuard) -> str:
    reservations = guard.ec2.describe_instances(InstanceIds=[guard.instance_id])
    return reservations["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_run_of_reads_the_run_from_the_task_name():
    assert run_of(f"cfw-{RUN}-3-count") == RUN
    assert run_of("funnel-task") is None and run_of(None) is None


def test_an_orphaned_runs_batch_jobs_are_terminated_and_only_theirs(guard):
    now = datetime.now(UTC)
    heartbeat.write(
        guard.store,
        guard.prefix,
        heartbeat.start(RUN, kind="tes", env="tes", cfw_version="1", now=now),
    )
    mine = [submit(guard, f"cfw-{RUN}-{n}-count") for n in range(2)]
    settings = Settings(orphan_after=timedelta(minutes=15), idle_after=timedelta(minutes=30))
    assert {(j.job_id, j.run_id, j.state) for j in guard.jobs()} == {
        (i, RUN, "SUBMITTED") for i in mine
    }
    assert guard.stopped() is False  # the server runs, the compute environment is enabled

    early = guard_check.check(guard, settings, now + timedelta(minutes=1))
    assert early.decision.actions == () and early.errors == ()
    assert {status(guard, i) for i in mine} == {"SUBMITTED"}

    late = guard_check.check(guard, settings, now + timedelta(minutes=20))
    assert late.errors == ()
    assert [a.cause for a in late.decision.actions] == ["stale"]
    assert late.done[0].startswith(f"stale: cancelled 2 jobs of run {RUN}")
    assert {status(guard, i) for i in mine} == {"FAILED"}  # terminated
    assert guard.jobs() == []
    assert server_state(guard) == "running"  # a stale run stops no server

    # idempotent; a cancel by run label touches only that run
    assert guard.cancel(Action(CANCEL, "stale", "again", RUN)) == []
    theirs = submit(guard, f"cfw-{OTHER}-1-count")
    assert guard.cancel(Action(CANCEL, "stale", "again", RUN)) == []
    assert status(guard, theirs) == "SUBMITTED"


def test_past_ttl_the_server_stops_and_the_compute_environment_starts_nothing(guard):
    now = datetime.now(UTC)
    heartbeat.write(
        guard.store,
        guard.prefix,
        heartbeat.start(RUN, kind="tes", env="tes", cfw_version="1", now=now),
    )
    job = submit(guard, f"cfw-{RUN}-1-count")
    settings = Settings(expires_at=now - timedelta(minutes=2))
    outcome = guard_check.check(guard, settings, now)  # the run is live: ttl wins
    assert outcome.errors == ()
    assert [(a.kind, a.cause) for a in outcome.decision.actions] == [
        ("cancel", "ttl"),
        ("stop", "ttl"),
    ]
    assert status(guard, job) == "FAILED"
    assert server_state(guard) in ("stopping", "stopped")
    ce = guard.batch.describe_compute_environments(computeEnvironments=[guard.compute_environment])[
        "computeEnvironments"
    ][0]
    assert ce["state"] == "DISABLED" and ce["computeResources"]["minvCpus"] == 0
    assert "stopped the Funnel server" in outcome.done[-1]
    assert "disabled the compute environment" in outcome.done[-1]
    assert guard.stopped() is True
    record = heartbeat.read_record(guard.store, guard.prefix)
    assert record.stopped_cause == "ttl"

    # the next check stops nothing again; a second stop changes nothing either
    after = guard_check.check(guard, settings, now + timedelta(minutes=5))
    assert [a.kind for a in after.decision.actions] == []
    assert guard.stop(Action(STOP, "ttl", "again")) == (
        "the Funnel server and its compute environment were stopped"
    )


def test_idle_stops_what_bills(guard):
    now = datetime.now(UTC)
    settings = Settings(idle_after=timedelta(minutes=30))
    first = guard_check.check(guard, settings, now)
    assert first.decision.actions == ()
    idle = guard_check.check(guard, settings, now + timedelta(minutes=31))
    assert [(a.kind, a.cause) for a in idle.decision.actions] == [("stop", "idle")]
    assert server_state(guard) in ("stopping", "stopped") and guard.stopped() is True

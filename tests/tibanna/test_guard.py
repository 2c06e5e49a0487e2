"""The tibanna guard's adapter (cfw.backends.tibanna.guard) against moto: a state machine
and executions made in moto (moto runs no Lambda: executions stay RUNNING until stopped),
instances tagged as Tibanna tags them, heartbeats in S3; the checks of
cfw.core.guard_check.check with the clock moved forward instead of waited for."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from cfw.backends._aws.store import S3Store
from cfw.backends.tibanna.guard import NOTHING_TO_STOP, TibannaGuard, run_of
from cfw.core import guard_check, heartbeat
from cfw.core.guard import CANCEL, Action, Settings

pytestmark = pytest.mark.moto

RUN, OTHER = "0101120000ab", "0101120000cd"


@pytest.fixture
def unicorn(aws_env):
    sess = boto3.session.Session(region_name="us-east-1")
    iam, sfn, s3 = sess.client("iam"), sess.client("stepfunctions"), sess.client("s3")
    tag = uuid.uuid4().hex[:8]
    role = iam.create_role(
        RoleName=f"guard-test-{tag}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    machine = sfn.create_state_machine(
        name=f"tibanna_unicorn_{tag}",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    bucket = f"cfw-{tag}-data"
    s3.create_bucket(Bucket=bucket)
    guard = TibannaGuard(
        sfn=sfn,
        ec2=sess.client("ec2"),
        store=S3Store(s3, bucket),
        prefix="cfw",
        state_machine_arn=machine,
    )
    return sess, guard


def start(sess, guard, name: str) -> str:
    return sess.client("stepfunctions").start_execution(
        stateMachineArn=guard.state_machine_arn, name=name, input="{}"
    )["executionArn"]


def instance_for(sess, jobid: str) -> str:
    ec2 = sess.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [{"Key": "Name", "Value": f"awsem-{jobid}"}, {"Key": "Type", "Value": "awsem"}]
    return ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def state_of(sess, instance_id: str) -> str:
    reservations = sess.client("ec2").describe_instances(InstanceIds=[instance_id])
    return reservations["Reservations"][0]["Instances"][0]["State"]["Name"]


def status(sess, arn: str) -> str:
    return sess.client("stepfunctions").describe_execution(executionArn=arn)["status"]


def test_run_of_reads_the_run_from_cfws_job_id():
    assert run_of(f"cfw-{RUN}-3-count-a1") == RUN
    assert run_of("cfw-r1-7-align-a2") == "r1"
    assert run_of("someone-elses-execution") is None


def test_an_orphaned_runs_executions_are_stopped_and_instances_terminated(unicorn):
    sess, guard = unicorn
    now = datetime.now(UTC)
    beat = heartbeat.start(RUN, kind="tibanna", env="tib", cfw_version="1", now=now)
    heartbeat.write(guard.store, guard.prefix, beat)
    mine = [start(sess, guard, f"cfw-{RUN}-{n}-count-a1") for n in range(3)]
    foreign = start(sess, guard, "not-from-cfw")
    instance = instance_for(sess, f"cfw-{RUN}-0-count-a1")
    settings = Settings(orphan_after=timedelta(minutes=15), idle_after=timedelta(minutes=30))

    jobs = guard.jobs()
    assert {(j.job_id, j.run_id, j.state) for j in jobs} == {
        *((f"cfw-{RUN}-{n}-count-a1", RUN, "RUNNING") for n in range(3)),
        ("not-from-cfw", None, "RUNNING"),
    }
    # a live run: nothing happens
    early = guard_check.check(guard, settings, now + timedelta(minutes=1))
    assert early.decision.actions == () and early.errors == ()
    assert {status(sess, a) for a in [*mine, foreign]} == {"RUNNING"}

    # the runner is gone: past orphan_after its executions stop, its instance goes
    late = guard_check.check(guard, settings, now + timedelta(minutes=20))
    assert late.errors == ()
    assert {a.cause for a in late.decision.actions} == {"stale", "orphan"}
    assert any(line.startswith(f"stale: cancelled 3 jobs of run {RUN}") for line in late.done)
    assert {status(sess, a) for a in [*mine, foreign]} == {"ABORTED"}
    assert state_of(sess, instance) in ("shutting-down", "terminated")
    record = heartbeat.read_record(guard.store, guard.prefix)
    assert [e.cause for e in record.history if e.action == CANCEL] == ["stale", "orphan"]

    # idempotent: nothing left to cancel, and a cancel by run finds nothing either
    again = guard_check.check(guard, settings, now + timedelta(minutes=25))
    assert again.decision.actions == () and again.errors == ()
    assert guard.cancel(Action(CANCEL, "stale", "again", RUN)) == []


def test_cancel_by_run_label_only_touches_that_run(unicorn):
    sess, guard = unicorn
    mine = start(sess, guard, f"cfw-{RUN}-1-a-a1")
    theirs = start(sess, guard, f"cfw-{OTHER}-1-a-a1")
    assert guard.cancel(Action(CANCEL, "stale", "test", RUN)) == [f"cfw-{RUN}-1-a-a1"]
    assert status(sess, mine) == "ABORTED" and status(sess, theirs) == "RUNNING"


def test_past_ttl_everything_is_cancelled_and_the_stop_says_nothing_bills(unicorn):
    sess, guard = unicorn
    now = datetime.now(UTC)
    heartbeat.write(
        guard.store,
        guard.prefix,
        heartbeat.start(RUN, kind="tibanna", env="tib", cfw_version="1", now=now),
    )
    arn = start(sess, guard, f"cfw-{RUN}-1-a-a1")
    assert guard.stopped() is None
    settings = Settings(expires_at=now - timedelta(minutes=1))
    outcome = guard_check.check(guard, settings, now)  # the run is live: ttl wins
    assert [a.cause for a in outcome.decision.actions] == ["ttl", "ttl"]
    assert status(sess, arn) == "ABORTED"
    assert f"ttl: {NOTHING_TO_STOP}" in outcome.done


def test_the_kind_gives_the_executor_and_cfw_cancel_this_store_and_adapter(unicorn, tmp_path):
    """Kind.heartbeat_store / guard_adapter: the data bucket under `cfw/`, the same place
    the guard's Lambda reads (CFW_GUARD_STORE), and the unicorn's executions."""
    import os

    from cfw.backends.tibanna.kind import KIND
    from support.builders import context

    sess, guard = unicorn
    bucket = guard.store.bucket
    ctx = context(
        "tibanna",
        {"region": "us-east-1"},
        outputs={"data_bucket": bucket, "state_machine_arn": guard.state_machine_arn},
        state_dir=tmp_path,
    )
    store, prefix = KIND.heartbeat_store(ctx, os.environ)
    assert (type(store).__name__, store.bucket, prefix) == ("S3Store", bucket, "cfw")
    adapter = KIND.guard_adapter(ctx, os.environ)
    start(sess, guard, f"cfw-{RUN}-1-a-a1")
    assert [j.run_id for j in adapter.jobs()] == [RUN]
    assert adapter.cancel(Action(CANCEL, "cancel", "test", RUN)) == [f"cfw-{RUN}-1-a-a1"]

"""Kind tibanna against moto on 127.0.0.1, with real Terraform and the aws provider from
the mirror: `cfw up` (init, apply), what the unicorn holds, jobs started on its real state
machine (batched status, cancel, logs), `cfw users`, a workflow run through the executor
until Ctrl-C, `cfw down` (destroy, verify by the environment's cfw-id), a second `down`,
and `down` after an `up` that failed half-way.

Where emulation stops: moto runs no Lambda, so executions stay RUNNING until stopped;
no EC2 instance is started by Tibanna here (the test starts one with Tibanna's tags to
check that cancel terminates it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from cfw.backends._aws import guard_lambda, guard_zip
from cfw.backends.tibanna import lambda_zip
from cfw.backends.tibanna.client import running_executions
from cfw.backends.tibanna.cloud import hand_over_table, leftovers, table_tags
from cfw.backends.tibanna.guard import run_of
from cfw.backends.tibanna.kind import KIND
from cfw.core.records import RunLog
from cfw.executor.session import open_context
from support.builders import context, identity, job_spec

pytestmark = [pytest.mark.moto, pytest.mark.timeout(900)]

SECRET = "moto-SECRET-access-key-never-shown-0001"
CONFIG = """kind: tibanna
region: us-east-1
log_retention_days: 7
"""
SNAKEFILE = """
rule hello:
    output: "hello.txt"
    resources: mem_mb=1000
    shell: "echo hello > {output}"
"""


@pytest.fixture
def tib_env(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return {**aws_env, "AWS_SECRET_ACCESS_KEY": SECRET}


def project(tmp_path: Path, name: str, config: str) -> Path:
    (tmp_path / "environments").mkdir(parents=True)
    (tmp_path / "environments" / f"{name}.yaml").write_text(config)
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    return tmp_path


class Calls:
    """Counts the API calls a boto3 client makes, by operation."""

    def __init__(self, client):
        self.ops: list[str] = []
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model, **_):
        self.ops.append(model.name)

    def take(self) -> list[str]:
        ops, self.ops = self.ops, []
        return ops


def no_secret_in(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            assert SECRET.encode() not in path.read_bytes(), f"the secret key is in {path}"


def test_up_jobs_users_run_down_against_moto(cfw, tmp_path, tib_env):
    _drop_master_table(boto3.client("dynamodb", region_name="us-east-1"))
    proj = project(tmp_path, "tib", CONFIG)
    up = cfw(["up", "tib", "--yes"], proj)
    assert up.code == 0, up.output
    assert SECRET not in up.output
    outputs = json.loads((proj / ".cfw" / "tib" / "outputs.json").read_text())
    env_id = outputs["cfw_id"]
    sess = boto3.session.Session(region_name="us-east-1")

    # -- what deploy_unicorn would have made, and what it would have removed -------------
    sfn = sess.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=outputs["state_machine_arn"])
    definition = json.loads(machine["definition"])
    assert definition["StartAt"] == "RunTaskAwsem"
    run_task = definition["States"]["RunTaskAwsem"]
    assert run_task["Resource"].endswith(f":function:run_task_awsem_{env_id}")
    assert [r["ErrorEquals"][0] for r in run_task["Retry"]] == [
        "DependencyStillRunningException",
        "EC2InstanceLimitWaitException",
        "Lambda.ServiceException",
    ]
    check = definition["States"]["CheckTaskAwsem"]
    assert {r["ErrorEquals"][0]: r["MaxAttempts"] for r in check["Retry"]}[
        "StillRunningException"
    ] == 100000
    lam = sess.client("lambda")
    zips = lambda_zip.build_all(tmp_path / "zips")
    for fn in lambda_zip.FUNCTIONS:
        conf = lam.get_function(FunctionName=f"{fn}_{env_id}")["Configuration"]
        assert conf["Handler"] == "service.handler"
        assert conf["Environment"]["Variables"]["TIBANNA_VERSION"] == lambda_zip.tibanna_version()
        assert conf["CodeSha256"] == zips[fn].sha256_b64
    run_env = lam.get_function(FunctionName=f"run_task_awsem_{env_id}")["Configuration"][
        "Environment"
    ]
    assert run_env["Variables"]["AWS_S3_ROLE_NAME"] == f"tibanna_{env_id}_for_ec2"
    s3 = sess.client("s3")
    for bucket in (outputs["data_bucket"], outputs["log_bucket"]):
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4, block
        # Tibanna writes <jobid>.postrun.json with a canned ACL: ACLs must stay on
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
        s3.put_object(Bucket=bucket, Key="x.postrun.json", Body=b"{}", ACL="private")
        s3.delete_object(Bucket=bucket, Key="x.postrun.json")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=outputs["data_bucket"])["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    iam = sess.client("iam")
    assert (
        iam.get_group(GroupName=outputs["user_group"])["Group"]["GroupName"] == f"tibanna_{env_id}"
    )
    attached = iam.list_attached_role_policies(RoleName=f"tibanna_{env_id}_run_task_awsem")
    assert not any(":aws:policy/" in p["PolicyArn"] for p in attached["AttachedPolicies"])
    assert (
        sess.client("dynamodb").describe_table(TableName="tibanna-master")["Table"]["KeySchema"][0][
            "AttributeName"
        ]
        == "Job Id"
    )
    no_secret_in(proj / ".cfw")
    guard_env = the_guard_is_deployed(sess, env_id, outputs)

    # -- jobs on the real state machine: submit, batched status, cancel, logs -------------
    kind, ctx = open_context(proj, "tib", "r1")
    backend = kind.backend(ctx)
    calls = Calls(backend.sfn)
    specs = [
        job_spec(
            "count",
            i,
            command=f"python -m snakemake --job {i}",
            threads=2,
            env=["SNAKEMAKE_STORAGE_S3_SECRET_KEY", "SNAKEMAKE_STORAGE_S3_REGION"],
            mem_mb=2000,
        )
        for i in range(3)
    ]
    secrets = {
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET,
        "SNAKEMAKE_STORAGE_S3_REGION": "us-east-1",
    }
    ids = [backend.submit(s, KIND.translate(s, ctx), secrets) for s in specs]
    assert calls.take() == ["StartExecution"] * 3
    for jobid in ids:
        execution = sfn.describe_execution(executionArn=backend.arns[jobid])
        assert execution["status"] == "RUNNING"
        document = json.loads(execution["input"])
        assert SECRET not in execution["input"]
        assert document["args"]["input_env"] == {"SNAKEMAKE_STORAGE_S3_REGION": "us-east-1"}
    row = sess.client("dynamodb").get_item(
        TableName="tibanna-master", Key={"Job Id": {"S": ids[0]}}
    )
    assert row["Item"]["Log Bucket"]["S"] == outputs["log_bucket"]

    statuses = backend.poll(ids)
    assert {s.state.value for s in statuses.values()} == {"running"}
    assert calls.take() == ["ListExecutions"]  # one call for all running jobs

    ec2 = sess.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Name", "Value": f"awsem-{ids[0]}"},
                    {"Key": "Type", "Value": "awsem"},
                ],
            }
        ],
    )["Instances"][0]
    backend.cancel([ids[0]])
    backend.cancel([ids[0]])  # idempotent
    state = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")
    calls.take()
    statuses = backend.poll(ids)
    assert statuses[ids[0]].state.value == "cancelled"
    assert calls.take() == ["ListExecutions", "DescribeExecution"]
    backend.poll(ids)
    assert calls.take() == ["ListExecutions"]  # a finished job is not asked about again

    assert "has not written" in backend.logs(ids[1])
    s3.put_object(
        Bucket=outputs["log_bucket"], Key=f"{ids[1]}.log", Body=b"## job started\nhello\n"
    )
    assert backend.logs(ids[1]) == "## job started\nhello\n"
    records = RunLog(ctx.run_dir, "tib", "r1")
    records.job_event("submitted", jobid=1, rule="count", external_id=ids[1])
    records.flush()
    logs = cfw(["logs", "tib", "1"], proj)
    assert logs.code == 0 and logs.stdout == "## job started\nhello\n", logs.output

    status = cfw(["status", "tib"], proj)
    assert status.code == 0 and "executions running: 2" in status.output, status.output

    # -- users ------------------------------------------------------------------------------
    iam.create_user(UserName="alice")
    assert cfw(["users", "add", "tib", "alice"], proj).code == 0
    listed = cfw(["users", "list", "tib", "--json"], proj)
    assert json.loads(listed.stdout) == ["alice"]
    missing = cfw(["users", "add", "tib", "nobody"], proj)
    assert missing.code == 2 and "no IAM user 'nobody'" in missing.stderr
    assert cfw(["users", "remove", "tib", "alice"], proj).code == 0
    again = cfw(["users", "remove", "tib", "alice"], proj)
    assert again.code == 0 and "nothing to do" in again.stderr
    assert cfw(["users", "add", "tib", "alice"], proj).code == 0  # down must cope with members

    # -- a workflow through the executor, until Ctrl-C ------------------------------------
    env = {**os.environ, "CFW_DEBUG": ""}
    run = subprocess.Popen(
        [sys.executable, "-m", "cfw", "run", "--env", "tib"],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = set()
    deadline = time.monotonic() + 120
    while not started and time.monotonic() < deadline and run.poll() is None:
        time.sleep(1)
        running = running_executions(sfn, outputs["state_machine_arn"])
        started = {a for a in running if ":cfw-" in a and "-hello-a1" in a}
    if not started:
        run.kill()
        said, _ = run.communicate(timeout=60)
        pytest.fail(f"the run started no execution (exit {run.returncode}): {said[-3000:]}")
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=180)
    assert run.returncode == 130, out
    assert SECRET not in out
    execution = sfn.describe_execution(executionArn=started.pop())
    assert execution["status"] == "ABORTED"
    assert SECRET not in execution["input"]
    assert json.loads(execution["input"])["args"]["input_env"].keys() <= {
        "SNAKEMAKE_STORAGE_S3_REGION",
        "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL",
    }
    # Snakemake removed the sources it uploaded; its S3 plugin then deletes an emptied
    # bucket: the unicorn's marker object keeps the data bucket alive
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=outputs["data_bucket"])["Contents"]]
    assert ".cfw-unicorn.json" in keys

    no_secret_in(proj)  # rendered files, state, run records, saved logs, Snakemake's logs

    # -- a runner killed mid-run (cfw run and Snakemake, SIGKILL): its execution stays
    # RUNNING and its heartbeat in the data bucket; `cfw cancel` (twice: idempotent) ends
    # it; the guard's handler, invoked here with the function's own environment (moto
    # runs no Lambda), stops what is left once it is orphan_after old (the clock moved on)
    killed = subprocess.Popen(
        [sys.executable, "-m", "cfw", "run", "--env", "tib"],
        cwd=proj,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    left: set[str] = set()
    deadline = time.monotonic() + 120
    while not left and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(1)
        running = running_executions(sfn, outputs["state_machine_arn"])
        left = {a for a in running if ":cfw-" in a and "-hello-a1" in a}
    assert left, "the run started no execution"
    # Snakemake runs in a session of its own: its pid is in the run's heartbeat
    [run_id] = {run_of(arn.rsplit(":", 1)[-1]) for arn in left}
    beat = json.loads(
        s3.get_object(Bucket=outputs["data_bucket"], Key=f"cfw/.cfw/runs/{run_id}.json")[
            "Body"
        ].read()
    )
    os.killpg(killed.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(beat["pid"]), signal.SIGKILL)
    killed.wait(timeout=30)
    time.sleep(2)
    assert left <= running_executions(sfn, outputs["state_machine_arn"])  # the runner is gone
    [killed_run] = {run_of(arn.rsplit(":", 1)[-1]) for arn in left}
    beats = s3.list_objects_v2(Bucket=outputs["data_bucket"], Prefix="cfw/.cfw/runs/")
    assert f"cfw/.cfw/runs/{killed_run}.json" in [o["Key"] for o in beats.get("Contents", [])]
    early = guard_lambda.run(guard_env, sess)  # its heartbeat is fresh: nothing happens
    assert early["errors"] == [] and early["actions"] == [], early
    assert {"r1", killed_run} <= {r["run"] for r in early["runs"] if r["live"]}

    # by its run id (a SIGKILLed process can linger as a zombie in a container whose init
    # reaps none, so `cfw cancel tib` alone may still take its runner for alive)
    first = cfw(["cancel", "tib", killed_run], proj)
    assert first.code == 0, first.output
    assert f"cancelled 1 job of run {killed_run}" in first.stderr, first.output
    again = cfw(["cancel", "tib", killed_run], proj)
    # its runner is gone: "no active job ... nothing to cancel" (with a live one: "nothing left")
    assert again.code == 0 and "to cancel" in again.stderr, again.output
    assert "cancelled" not in again.stderr, again.output
    # its heartbeat ages out after orphan_after; `cfw down` would wait for that: gone now
    s3.delete_object(Bucket=outputs["data_bucket"], Key=f"cfw/.cfw/runs/{killed_run}.json")
    for arn in left:
        assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"

    # run r1's two executions (started above, no heartbeat) are orphaned 20 minutes on
    orphaned = running_executions(sfn, outputs["state_machine_arn"])
    assert len(orphaned) == 2
    result = guard_lambda.run(guard_env, sess, now=datetime.now(UTC) + timedelta(minutes=20))
    assert result["errors"] == [], result
    assert [(a["action"], a["cause"], a["run"]) for a in result["actions"]] == [
        ("cancel", "orphan", "r1")
    ]
    assert running_executions(sfn, outputs["state_machine_arn"]) == set()
    for arn in orphaned:
        assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    record = json.loads(
        s3.get_object(Bucket=outputs["data_bucket"], Key="cfw/.cfw/guard.json")["Body"].read()
    )
    assert [e["cause"] for e in record["history"] if e["action"] == "cancel"] == ["orphan"]

    # -- a second unicorn in the account uses tib's tibanna-master table by name -----------
    ddb = sess.client("dynamodb")
    proj2 = project(tmp_path / "second", "tib2", CONFIG)
    up2 = cfw(["up", "tib2", "--yes"], proj2)
    assert up2.code == 0, up2.output
    outputs2 = json.loads((proj2 / ".cfw" / "tib2" / "outputs.json").read_text())
    env_id2 = outputs2["cfw_id"]
    assert outputs["dynamodb_table_created"] is True
    assert outputs2["dynamodb_table_created"] is False
    assert table_tags(sess)["cfw-id"] == env_id
    policy = iam.get_policy(
        PolicyArn=f"arn:aws:iam::{outputs2['account_id']}:policy/tibanna_{env_id2}_dynamodb"
    )["Policy"]
    document = iam.get_policy_version(
        PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]["Document"]
    table_arn = ddb.describe_table(TableName="tibanna-master")["Table"]["TableArn"]
    assert table_arn in json.dumps(document)

    # -- down: destroy, verify by cfw-id, forget; then again ---------------------------------
    # tib made the table, but tib2 still uses it: tib leaves it, tagged cfw-left-by
    down = cfw(["down", "tib", "--yes"], proj)
    assert down.code == 0, down.output
    assert "destroyed, verified, forgotten" in down.stderr
    assert "leaving the tibanna-master table" in down.stderr
    assert table_tags(sess) == {"cfw-left-by": env_id}
    assert SECRET not in down.output
    assert leftovers(sess, env_id, env_id, [outputs["data_bucket"], outputs["log_bucket"]]) == []
    assert not any(env_id in r["RoleName"] for r in iam.list_roles()["Roles"])
    assert not any(env_id in f["FunctionName"] for f in lam.list_functions()["Functions"])
    groups = sess.client("scheduler").list_schedule_groups()["ScheduleGroups"]
    assert not any(env_id in g["Name"] for g in groups)
    assert iam.list_groups_for_user(UserName="alice")["Groups"] == []
    assert iam.get_user(UserName="alice")["User"]["UserName"] == "alice"  # not ours: kept
    again = cfw(["down", "tib", "--yes"], proj)
    assert again.code == 0 and "nothing to destroy" in again.stderr

    # the last unicorn to go deletes the table that tib left to it
    down2 = cfw(["down", "tib2", "--yes"], proj2)
    assert down2.code == 0, down2.output
    assert table_tags(sess) is None
    assert leftovers(sess, env_id2, env_id2, []) == []


def the_guard_is_deployed(sess, env_id: str, outputs: dict) -> dict[str, str]:
    """The schedule, the function (cfw's zip, no secret in its environment) and its role,
    which may call only what the adapter calls; returns the function's environment."""
    name = f"cfw-{env_id}-guard"
    conf = sess.client("lambda").get_function(FunctionName=name)["Configuration"]
    assert conf["Handler"] == guard_zip.HANDLER
    assert conf["CodeSha256"] == guard_zip.digest("cfw.backends.tibanna.guard")
    variables = conf["Environment"]["Variables"]
    assert variables["CFW_GUARD_STATE_MACHINE"] == outputs["state_machine_arn"]
    assert variables["CFW_GUARD_STORE"] == f"s3://{outputs['data_bucket']}/cfw"
    assert SECRET not in json.dumps(variables)
    schedule = sess.client("scheduler").get_schedule(GroupName=name, Name=f"{name}-check")
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["Target"]["Arn"] == conf["FunctionArn"]
    policy = sess.client("iam").get_role_policy(
        RoleName=f"{name}-function", PolicyName=f"{name}-function"
    )["PolicyDocument"]
    actions = set()
    for statement in policy["Statement"]:
        listed = statement["Action"]
        listed = {listed} if isinstance(listed, str) else set(listed)
        actions |= listed
        if "ec2:TerminateInstances" in listed:
            assert statement["Condition"]["StringLike"]["ec2:ResourceTag/Name"] == "awsem-cfw-*"
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "states:ListExecutions",
        "states:StopExecution",
        "ec2:DescribeInstances",
        "ec2:TerminateInstances",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    return variables


def test_down_after_an_up_that_failed_half_way(cfw, tmp_path, tib_env):
    """A role with one of the unicorn's names already exists (another unicorn with the same
    usergroup): apply fails part-way, with resources made; `down` removes exactly those."""
    proj = project(tmp_path, "half", CONFIG + "usergroup: halfway\n")
    iam = boto3.client("iam")
    iam.create_role(
        RoleName="tibanna_halfway_for_ec2",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                    }
                ],
            }
        ),
    )
    try:
        up = cfw(["up", "half", "--yes"], proj)
        assert up.code == 1, up.output
        assert "EntityAlreadyExists" in up.stderr and "cfw down half" in up.stderr
        meta = json.loads((proj / ".cfw" / "half" / "cfw.json").read_text())
        assert meta["phase"] == "failed" and meta["resources"] > 0
        status = cfw(["status", "--json"], proj)
        assert json.loads(status.stdout)[0]["state"] == "half-up"

        down = cfw(["down", "half", "--yes"], proj)
        assert down.code == 0, down.output
        sess = boto3.session.Session(region_name="us-east-1")
        env_id = meta["env_id"]
        assert (
            leftovers(sess, env_id, "halfway", [f"cfw-{env_id}-data", f"cfw-{env_id}-logs"]) == []
        )
        assert iam.get_role(RoleName="tibanna_halfway_for_ec2")  # not ours: left alone
        assert cfw(["down", "half", "--yes"], proj).code == 0
    finally:
        iam.delete_role(RoleName="tibanna_halfway_for_ec2")


def test_logs_show_the_error_markers_and_postrun_json_of_a_job(aws_env, tmp_path):
    """`cfw logs` of a tibanna job: <jobid>.log, then <jobid>.error, <jobid>.spot_failure
    and the end of <jobid>.postrun.json where they exist (names as awsf3 writes them)."""
    from cfw.backends.tibanna.backend import TibannaBackend

    bucket = "cfw-logs-outcome-test"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    ctx = context(
        "tibanna",
        {"region": "us-east-1"},
        name="tib",
        outputs={
            "log_bucket": bucket,
            "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:none",
        },
        env="logs0",
        state_dir=tmp_path,
    )
    backend = TibannaBackend(ctx)
    s3.put_object(Bucket=bucket, Key="ok.log", Body=b"## job started\nhello\n")
    s3.put_object(
        Bucket=bucket,
        Key="ok.postrun.json",
        Body=json.dumps({"Job": {"JOBID": "ok", "status": ",0,0", "end_time": "t1"}}).encode(),
    )
    assert backend.logs("ok") == (
        "## job started\nhello\n"
        f"--- tibanna: s3://{bucket}/ok.postrun.json: status ,0,0, end_time t1\n"
    )

    s3.put_object(Bucket=bucket, Key="bad.log", Body=b"## job started\nboom")
    s3.put_object(Bucket=bucket, Key="bad.error", Body=b"")
    s3.put_object(Bucket=bucket, Key="bad.spot_failure", Body=b"")
    s3.put_object(
        Bucket=bucket,
        Key="bad.postrun.json",
        Body=json.dumps(
            {"Job": {"JOBID": "bad", "status": ",0,1", "instance_type": "c5.large"}}
        ).encode(),
    )
    lines = backend.logs("bad").splitlines()
    assert lines[:2] == ["## job started", "boom"]
    assert lines[2] == f"--- tibanna: s3://{bucket}/bad.error exists: " + (
        "awsf3 marked the job failed (a step on the instance exited non-zero)"
    )
    assert lines[3].startswith(f"--- tibanna: s3://{bucket}/bad.spot_failure exists: AWS ")
    assert lines[4] == (
        f"--- tibanna: s3://{bucket}/bad.postrun.json: status ,0,1 (a non-zero exit code: "
        "failed), instance_type c5.large"
    )

    s3.put_object(Bucket=bucket, Key="early.spot_failure", Body=b"")  # no .log yet
    early = backend.logs("early")
    assert "has not written" in early and "early.spot_failure exists" in early
    assert "has not written" in backend.logs("nothing")  # nothing at all: as before
    assert "--- tibanna" not in backend.logs("nothing")


def _drop_master_table(ddb) -> None:
    """moto's account is shared by the tests: start without tibanna-master."""
    with contextlib.suppress(ddb.exceptions.ResourceNotFoundException):
        ddb.delete_table(TableName="tibanna-master")


def test_who_manages_the_shared_tibanna_master_table(aws_env):
    """auto: create the table when the account has none, keep managing the one this
    environment made (same answer on every up and down), leave anyone else's alone."""
    from cfw.backends.tibanna.config import TibannaConfig
    from cfw.backends.tibanna.kind import create_table

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _drop_master_table(ddb)
    config = TibannaConfig(name="tib", region="us-east-1")
    assert config.create_dynamodb_table == "auto"
    mine = identity("tib", "tibanna", "tib-aaaaaa")
    theirs = identity("tib2", "tibanna", "tib2-bbbbbb")
    assert create_table(config, mine) is True  # none yet
    arn = ddb.create_table(
        TableName="tibanna-master",
        AttributeDefinitions=[{"AttributeName": "Job Id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Job Id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "cfw-id", "Value": mine.env_id}],
    )["TableDescription"]["TableArn"]
    try:
        assert create_table(config, mine) is True  # made by this environment: still ours
        assert create_table(config, theirs) is False
        sess = boto3.session.Session(region_name="us-east-1")
        hand_over_table(sess, mine.env_id)
        assert table_tags(sess) == {"cfw-left-by": mine.env_id}
        assert create_table(config, mine) is False  # handed over: no longer anyone's
        ddb.untag_resource(ResourceArn=arn, TagKeys=["cfw-left-by"])  # deploy_unicorn's
        assert create_table(config, mine) is False
        for explicit in (True, False):
            forced = TibannaConfig(name="tib", region="us-east-1", create_dynamodb_table=explicit)
            assert create_table(forced, theirs) is explicit
    finally:
        _drop_master_table(ddb)
    assert table_tags(boto3.session.Session(region_name="us-east-1")) is None

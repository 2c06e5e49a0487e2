"""Kind `tibanna` on moto: an execution whose spot instance was reclaimed (awsf3's
``<jobid>.spot_failure`` in the log bucket, the execution stopped) is resubmitted by cfw,
on spot and then once with ``spot_instance: false``; an execution that failed without a
spot_failure is not retried. moto runs the state machine for real (a Wait state stands in
for the Lambdas moto cannot run), so the last execution succeeds by itself."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import boto3
import pytest

from cfw.backends.base import JobState
from cfw.backends.tibanna.kind import KIND
from cfw.executor.retry import SpotPolicy
from support.builders import context, job_spec
from support.spot import SpotDriver

REGION = "us-east-1"
WAIT_S = 3  # what the on-demand execution "runs" for


def moto_config(endpoint: str, execute: bool) -> None:
    body = json.dumps({"stepfunctions": {"execute_state_machine": execute}}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def unicorn(aws_env):
    """A log bucket and a state machine that waits, then succeeds (or fails)."""
    moto_config(aws_env["AWS_ENDPOINT_URL"], True)
    suffix = uuid.uuid4().hex[:8]
    bucket = f"cfw-spot-logs-{suffix}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    sfn = boto3.client("stepfunctions", region_name=REGION)

    def machine(final: str = "Succeed") -> str:
        definition = {
            "StartAt": "Run",
            "States": {
                "Run": {"Type": "Wait", "Seconds": WAIT_S, "Next": "End"},
                "End": {
                    "Type": final,
                    **({"Error": "AWSEMJobErrorException"} if final == "Fail" else {}),
                },
            },
        }
        return sfn.create_state_machine(
            name=f"tibanna-spot-{final.lower()}-{suffix}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/tibanna-spot",
        )["stateMachineArn"]

    yield bucket, machine, sfn
    moto_config(aws_env["AWS_ENDPOINT_URL"], False)


def make_driver(tmp_path, bucket: str, arn: str, retries: int, fallback: str = "on-demand"):
    from cfw.backends.tibanna.backend import TibannaBackend

    ctx = context(
        "tibanna",
        {"region": REGION},
        name="tib",
        outputs={
            "log_bucket": bucket,
            "data_bucket": bucket,
            "state_machine_arn": arn,
            "state_machine_name": arn.rsplit(":", 1)[-1],
            "region": REGION,
            "account_id": "123456789012",
        },
        env="spot0",
        state_dir=tmp_path,
    )
    return SpotDriver(
        KIND, ctx, TibannaBackend(ctx), SpotPolicy(retries, fallback), tmp_path / "run"
    )


def reclaimed(bucket: str, sfn, spot_losses: int):
    """The first SPOT_LOSSES executions lose their spot instance: awsf3 writes
    <jobid>.spot_failure and the execution is stopped; later ones run to their end."""
    s3 = boto3.client("s3", region_name=REGION)

    def service(jobid: str, spec, index: int) -> None:
        if index < spot_losses:
            s3.put_object(Bucket=bucket, Key=f"{jobid}.spot_failure", Body=b"")
            arn = service.driver.backend._arn(jobid)
            sfn.stop_execution(executionArn=arn, error="spot", cause="instance interrupted")
        else:
            time.sleep(WAIT_S + 1)

    return service


def input_of(sfn, driver, jobid: str) -> dict:
    desc = sfn.describe_execution(executionArn=driver.backend._arn(jobid))
    return json.loads(desc["input"])


def test_a_reclaimed_spot_instance_means_spot_again_then_on_demand(tmp_path, unicorn):
    bucket, machine, sfn = unicorn
    driver = make_driver(tmp_path, bucket, machine(), retries=1)
    service = reclaimed(bucket, sfn, 2)
    service.driver = driver
    out = driver.run(job_spec("align", 12, preemptible=True), service, polls=30)
    assert out.state == JobState.SUCCEEDED, out
    spot = [input_of(sfn, driver, j)["config"]["spot_instance"] for j in out.external_ids]
    assert spot == [True, True, False]
    assert out.messages[-1] == "job 12 (align) preempted twice; now on demand"
    preempted = [r for r in driver.records() if r["event"] == "preempted"]
    assert len(preempted) == 2 and "spot_failure" in preempted[0]["reason"]


def test_fallback_fail_names_the_preemptions(tmp_path, unicorn):
    bucket, machine, sfn = unicorn
    driver = make_driver(tmp_path, bucket, machine(), retries=0, fallback="fail")
    service = reclaimed(bucket, sfn, 5)
    service.driver = driver
    out = driver.run(job_spec("align", 5, preemptible=True), service, polls=10)
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert out.reason.startswith("job 5 (align) preempted once, 0 spot retries used up")


def test_a_failed_execution_without_spot_failure_is_not_retried(tmp_path, unicorn):
    bucket, machine, sfn = unicorn
    driver = make_driver(tmp_path, bucket, machine("Fail"), retries=3)
    service = reclaimed(bucket, sfn, 0)
    service.driver = driver
    out = driver.run(job_spec("align", 6, preemptible=True), service, polls=30)
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "AWSEMJobErrorException" in out.reason


def test_an_execution_with_no_instance_fails_after_pending_timeout(tmp_path, aws_env):
    """moto starts no instance for an execution (it runs no Lambda): the job waits for
    one; after pending_timeout it is stopped and fails saying so."""
    from cfw.backends.tibanna.backend import INSTANCE_CHECK_S, TibannaBackend
    from support.spot import Clock, PendingDriver

    moto_config(aws_env["AWS_ENDPOINT_URL"], False)  # executions stay RUNNING
    suffix = uuid.uuid4().hex[:8]
    bucket = f"cfw-pending-logs-{suffix}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"tibanna-pending-{suffix}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/tibanna-spot",
    )["stateMachineArn"]
    spot = make_driver(tmp_path, bucket, arn, retries=0)
    clock = Clock()
    backend = TibannaBackend(spot.ctx, clock=clock)
    watch = PendingDriver(spot.ctx, backend, clock)
    waiting, started = (job_spec("align", i) for i in (1, 2))
    ids = [backend.submit(s, KIND.translate(s, spot.ctx), {}) for s in (waiting, started)]
    assert {s.state for s in watch.poll(ids).values()} == {JobState.RUNNING}  # just started
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(  # run_task's instance for the second job, tagged as Tibanna tags it
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"awsem-{ids[1]}"}]}
        ],
    )
    clock.now += INSTANCE_CHECK_S
    statuses = watch.poll(ids)
    assert statuses[ids[1]].state == JobState.RUNNING
    assert statuses[ids[0]].state == JobState.PENDING
    assert "no EC2 instance (awsem-" in statuses[ids[0]].reason
    backend.cancel([ids[1]])  # the running one ends: nothing of the run runs any more
    clock.minutes(30)
    status = watch.poll(ids[:1])[ids[0]]
    assert status.state == JobState.FAILED
    assert status.reason.startswith("waited 30m for capacity with none of the run's jobs")
    assert "no EC2 instance" in status.reason
    desc = sfn.describe_execution(executionArn=backend._arn(ids[0]))
    assert desc["status"] == "ABORTED"  # cfw stopped it

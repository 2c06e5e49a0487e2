"""Shared environments: remote Terraform state in S3 (moto) with locking.

A platform engineer brings the environment up in one working directory; a user in another
directory with the same config sees it, runs on it and tears it down, without
re-provisioning; a held state lock stops a second `up` with a clear message.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import WORKFLOWS, copy_workflow, run_cfw

pytestmark = [pytest.mark.moto, pytest.mark.timeout(600)]


@pytest.fixture
def shared(tmp_path: Path, aws_env, sandbox_base: Path):
    bucket = f"cfw-state-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    config = (
        f"kind: local\nstate:\n  backend: s3\n  bucket: {bucket}\n"
        "  key: team/terraform.tfstate\n  region: us-east-1\n"
    )
    dirs = []
    for name in ("platform", "user"):
        workdir = copy_workflow(WORKFLOWS / "wildcards", tmp_path / name)
        (workdir / "environments").mkdir()
        (workdir / "environments" / "team.yaml").write_text(config)
        dirs.append(workdir)
    return bucket, dirs[0], dirs[1]


def status(cwd: Path, name: str) -> dict:
    result = run_cfw(["status", name, "--json"], cwd=cwd)
    assert result.code == 0, result.output
    [env] = json.loads(result.stdout)
    return env


def test_two_working_directories_one_environment(shared):
    bucket, platform, user = shared
    up = run_cfw(["up", "team", "--yes"], cwd=platform)
    assert up.code == 0, up.output
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert "team/terraform.tfstate" in keys  # the state is remote
    assert not (platform / ".cfw" / "team" / "terraform.tfstate").exists()
    env_id = status(platform, "team")["env_id"]

    s3 = boto3.client("s3")

    def serial() -> int:
        body = s3.get_object(Bucket=bucket, Key="team/terraform.tfstate")["Body"].read()
        return json.loads(body)["serial"]

    provisioned = serial()
    # the user runs at once, in a directory that has never seen the environment: the run
    # reads the remote state's outputs and provisions nothing
    run = run_cfw(["run", "--env", "team"], cwd=user)
    assert run.code == 0, run.output[-2000:]
    assert "terraform apply" not in run.output
    assert serial() == provisioned  # nothing was written to the state
    assert (user / "results" / "s2" / "merged.txt").exists()
    seen = status(user, "team")
    assert seen["state"] == "up" and seen["env_id"] == env_id

    # an `up` from the user's directory keeps the environment's id (labels unchanged)
    again = run_cfw(["up", "team", "--yes"], cwd=user)
    assert again.code == 0, again.output
    assert status(user, "team")["env_id"] == env_id
    outputs = json.loads((user / ".cfw" / "team" / "outputs.json").read_text())
    assert outputs["cfw_id"] == env_id and outputs["cfw_labels"]["cfw-id"] == env_id

    # an up or a down while someone holds the state lock stops with a clear message
    s3.put_object(
        Bucket=bucket,
        Key="team/terraform.tfstate.tflock",
        Body=json.dumps(
            {
                "ID": "held-by-test",
                "Operation": "OperationTypeApply",
                "Who": "someone@elsewhere",
                "Version": "1.11.4",
                "Created": "2026-01-01T00:00:00Z",
                "Path": "team",
            }
        ),
    )
    for command in (["up", "team", "--yes"], ["down", "team", "--yes"]):
        locked = run_cfw([*command, "--lock-timeout", "2"], cwd=user)
        assert locked.code == 2, locked.output
        assert "state is locked" in locked.stderr and "--lock-timeout" in locked.stderr
        assert "someone@elsewhere" in locked.stderr  # who holds it
    assert status(platform, "team")["state"] == "up"  # the locked down destroyed nothing
    s3.delete_object(Bucket=bucket, Key="team/terraform.tfstate.tflock")

    # the user tears it down; the platform directory's second down is a no-op
    down = run_cfw(["down", "team", "--yes"], cwd=user)
    assert down.code == 0, down.output
    assert "destroyed, verified, forgotten" in down.stderr
    state = json.loads(s3.get_object(Bucket=bucket, Key="team/terraform.tfstate")["Body"].read())
    assert state["resources"] == []
    again = run_cfw(["down", "team", "--yes"], cwd=platform)
    assert again.code == 0, again.output

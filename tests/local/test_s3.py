"""The local backend with an S3 storage (moto on 127.0.0.1): inputs staged, jobs reading and
writing through S3, targets downloaded; credentials only ever in job environments."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import EXAMPLES, copy_workflow, run_cfw
from support.workflows import plain_snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.moto, pytest.mark.timeout(600)]


@pytest.fixture
def bucket(aws_env) -> str:
    name = f"cfw-test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def s3_workflow(tmp_path: Path, bucket: str) -> Path:
    workdir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")
    (workdir / "environments").mkdir()
    (workdir / "environments" / "local.yaml").write_text(
        f"kind: local\nstorage:\n  provider: s3\n  prefix: s3://{bucket}/runs/qs\n"
    )
    return workdir


def test_quickstart_through_s3(tmp_path: Path, bucket: str, aws_env, sandbox_base: Path):
    workdir = s3_workflow(tmp_path, bucket)
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-3000:]
    assert "staging 4 input file(s) to s3://" in result.stderr
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert "runs/qs/data/alpha.fa" in keys  # inputs were staged
    assert "runs/qs/results/gc/delta.txt" in keys  # intermediate outputs live in S3
    assert not any("workflow-sources" in k for k in keys)  # archive cleaned up
    assert "runs/qs/.cfw-keep" in keys  # the S3 plugin deletes buckets that become empty
    # the requested target came back; intermediates stay in the bucket
    plain_dir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "plain")
    assert plain_snakemake(plain_dir).returncode == 0
    assert (workdir / "results/report.tsv").read_text() == (
        plain_dir / "results/report.tsv"
    ).read_text()
    assert not (workdir / "results" / "gc").exists()

    # the secret key is in no record, log or job command cfw wrote
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    for path in (workdir / ".cfw").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    explain = run_cfw(["run", "--explain", "--forceall"], cwd=workdir)
    assert explain.code == 0, explain.output[-2000:]
    jobs = [json.loads(line) for line in explain.stdout.splitlines()]
    assert len(jobs) == 9
    assert secret not in explain.stdout
    assert "SNAKEMAKE_STORAGE_S3_SECRET_KEY" in jobs[0]["env_vars"]  # by name only
    assert "--default-storage-provider 's3'" in jobs[0]["submission"]["argv"][2]


def test_second_run_uploads_nothing_new_and_finds_outputs(
    tmp_path: Path, bucket: str, aws_env, sandbox_base: Path
):
    workdir = s3_workflow(tmp_path, bucket)
    assert run_cfw(["run"], cwd=workdir).code == 0
    again = run_cfw(["run"], cwd=workdir)
    assert again.code == 0, again.output[-2000:]
    assert "Nothing to be done" in again.output


def test_missing_credentials_is_a_user_error(tmp_path: Path, bucket: str, monkeypatch):
    workdir = s3_workflow(tmp_path, bucket)
    result = run_cfw(
        ["run"], cwd=workdir, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    )
    assert result.code == 2
    assert "needs credentials" in result.stderr and "AWS_ACCESS_KEY_ID" in result.stderr

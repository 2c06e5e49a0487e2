"""The in-job checkpoint staging command runs on a node that has Snakemake and its storage
plugin but not cfw, and the local fork launcher still recognises it."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import boto3
import pytest

from cfw.backends.local import forkrun
from cfw.core.staging import job_stage_command, job_stage_script

pytestmark = [pytest.mark.moto]


def _source() -> str:
    encoded = re.search(r"b64decode\('([A-Za-z0-9+/=]+)'\)", job_stage_script()).group(1)
    return base64.b64decode(encoded).decode()


def test_job_stage_script_is_one_shell_word_and_imports_no_cfw():
    script = job_stage_script()
    assert "\n" not in script and "'" not in script.split("'")[1]
    source = _source()
    compile(source, "<job-stage>", "exec")
    assert not re.search(r"^\s*(import|from)\s+cfw\b", source, re.M), source


def test_fork_launcher_runs_the_inlined_stage_in_process():
    command = job_stage_command(["s3://b/ck/a.txt"], "--default-storage-provider s3")
    chain = forkrun.parse_chain(f"{command} && python -m snakemake --target-jobs x")
    assert chain == [
        ["cfw.core.staging", "s3://b/ck/a.txt", "--", "--default-storage-provider", "s3"],
        ["snakemake", "--target-jobs", "x"],
    ]
    # other inline code is not ours to run in-process
    assert forkrun.parse_chain("python -c 'print(1)' && python -m snakemake") is None


def test_job_stage_command_stages_from_s3_without_cfw(tmp_path: Path, aws_env):
    bucket = f"cfw-test-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="runs/x/ck/samples/a.txt", Body=b"alpha\n")

    # a node without cfw: the `python` on PATH skips site (so no .pth file puts cfw's
    # editable checkout or its Snakemake plugins on the path), and importing cfw fails
    shadow = tmp_path / "shadow" / "cfw"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('cfw is not on this node')\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    (bindir / "python").chmod(0o755)
    site = sysconfig.get_paths()["purelib"]
    local_prefix = tmp_path / "node" / ".snakemake" / "storage"
    command = job_stage_command(
        [f"s3://{bucket}/runs/x/ck/samples/a.txt"],
        f"--default-storage-provider s3 --default-storage-prefix s3://{bucket}/runs/x "
        f"--local-storage-prefix {local_prefix}",
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{shadow.parent}:{site}",
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": aws_env["AWS_ENDPOINT_URL"],
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": aws_env["AWS_ACCESS_KEY_ID"],
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": aws_env["AWS_SECRET_ACCESS_KEY"],
    }
    result = subprocess.run(
        ["/bin/bash", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    staged = local_prefix / "s3" / bucket / "runs/x/ck/samples/a.txt"
    assert staged.read_text() == "alpha\n", result.stderr[-2000:]
    assert f"cfw: staged s3://{bucket}/runs/x/ck/samples/a.txt" in result.stderr

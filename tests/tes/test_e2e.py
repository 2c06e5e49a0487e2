"""Kind `tes` end to end: `cfw up` of an existing TES server (url:), `cfw run` of the
quickstart workflow whose jobs run as TES tasks on a TES server started by the test (it
runs each task's command; tests/support/tes_server.py), storage in S3 on moto, a failing
job's log, `cfw down`; and `cfw run --explain` before `up`. Secrets never show."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import EXAMPLES
from support.tes_schema import request_errors, unknown_properties
from support.tes_server import TesServer

PASSWORD = "Funnel-pw-7Gd2kQ"
TOKEN = "tes-token-Zr81vB"
FAST = ["--seconds-between-status-checks", "1"]


def secrets_absent(project: Path, texts: list[str], secrets: list[str]) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text
        for path in project.rglob("*"):
            if path.is_file() and ".terraform" not in path.parts:
                assert secret.encode() not in path.read_bytes(), f"{secret[:4]}… found in {path}"


@pytest.fixture
def bucket(aws_env):
    name = f"cfw-tes-run-{id(aws_env) % 100000}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


def project_with(tmp_path: Path, url: str, bucket: str, snakefile: str | None = None) -> Path:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "quickstart", project)
    if snakefile is not None:
        (project / "Snakefile").write_text(snakefile)
    (project / "environments").mkdir()
    (project / "environments" / "tes.yaml").write_text(
        yaml.safe_dump(
            {
                "kind": "tes",
                "url": url,
                # no IAM role exists where these tasks run, so the S3 keys are sent (and warned of)
                "storage": {"prefix": f"s3://{bucket}/run", "pass_credentials": True},
            }
        )
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    for path in sorted((project / "data").glob("*.fa")):  # inputs live in the storage
        s3.upload_file(str(path), bucket, f"run/data/{path.name}")
    return project


@pytest.mark.e2e
@pytest.mark.moto
def test_workflow_runs_as_tes_tasks_and_down_forgets(tmp_path, cfw, aws_env, bucket):
    with TesServer(users={"cfw": PASSWORD}, run_commands=True) as server:
        project = project_with(tmp_path, server.url, bucket)
        up = cfw(["up", "tes", "--yes"], project)
        assert up.code == 0, up.output
        assert f"tes_url = {server.url}" in up.output
        assert server.requests == []  # up only records the server
        env = {"FUNNEL_SERVER_USER": "cfw", "FUNNEL_SERVER_PASSWORD": PASSWORD}
        run = cfw(
            ["run", "--env", "tes", *FAST, "--config", "samples=[alpha,beta]"], project, env=env
        )
        assert run.code == 0, run.output[-3000:]
        report = (
            boto3.client("s3", region_name="us-east-1")
            .get_object(Bucket=bucket, Key="run/results/report.tsv")["Body"]
            .read()
            .decode()
        )
        assert report.splitlines()[0] == "sample\tgc" and len(report.splitlines()) == 3

        assert server.count("CreateTask") == 5  # 2 + 2 + 1; rule all is local
        assert server.count("GetTask") == 0  # status only through ListTasks
        listings = [r for r in server.requests if r.operation == "ListTasks"]
        assert listings and all(
            r.params["view"] == ["MINIMAL"] and "cfw-run" in r.params["tag_key"] for r in listings
        )
        assert run.output.count("environment variables are not secret on TES") == 1
        for task in server.tasks.values():
            assert task.owner == "cfw"
            assert not request_errors(
                {
                    k: v
                    for k, v in task.doc.items()
                    if k not in ("id", "state", "logs", "creation_time")
                }
            )
        secrets_absent(project, [up.output, run.output], [PASSWORD])

        status = cfw(["status", "tes"], project, env=env)
        assert status.code == 0 and "cfw test TES" in status.output, status.output
        down = cfw(["down", "tes", "--yes"], project, env=env)
        assert down.code == 0, down.output
        assert not (project / ".cfw" / "tes").exists()
        again = cfw(["down", "tes", "--yes"], project)
        assert again.code == 0 and "nothing to destroy" in again.output


FAILING = """
rule all:
    input: "out/done.txt"

rule fails:
    output: "out/done.txt"
    shell: "echo 'boom-on-stderr' >&2; exit 3"
"""


@pytest.mark.e2e
@pytest.mark.moto
def test_failed_task_log_is_saved_and_shown(tmp_path, cfw, aws_env, bucket):
    with TesServer(tokens={TOKEN}, run_commands=True) as server:
        project = project_with(tmp_path, server.url, bucket, snakefile=FAILING)
        assert cfw(["up", "tes", "--yes"], project).code == 0
        run = cfw(["run", "--env", "tes", *FAST], project, env={"TES_TOKEN": TOKEN})
        assert run.code == 1, run.output[-3000:]
        assert "EXECUTOR_ERROR" in run.output
        logs = cfw(["logs", "tes", "1"], project, env={"TES_TOKEN": TOKEN})
        assert logs.code == 0, logs.output
        assert "boom-on-stderr" in logs.stdout  # the rule's stderr, from the FULL view
        assert "EXECUTOR_ERROR" in logs.stdout and "exit code 1" in logs.stdout
        assert [r.params.get("view") for r in server.requests if r.operation == "GetTask"] == [
            ["FULL"]
        ]
        secrets_absent(project, [run.output, logs.output], [TOKEN])


@pytest.mark.e2e
def test_explain_before_up_prints_valid_tes_tasks_without_secrets(tmp_path, cfw):
    project = tmp_path / "project"
    project.mkdir()
    (project / "Snakefile").write_text("""
rule all:
    input: expand("out/{n}.txt", n=[1, 2])

rule make:
    output: "out/{n}.txt"
    threads: 2
    resources: mem_mb=1500, disk_mb=5000
    shell: "echo {wildcards.n} > {output}"
""")
    (project / "environments").mkdir()
    shutil.copy(
        Path(__file__).resolve().parents[2] / "environments" / "tes.yaml",
        project / "environments" / "tes.yaml",
    )
    secrets = {
        "TES_TOKEN": TOKEN,
        "FUNNEL_SERVER_USER": "cfw",
        "FUNNEL_SERVER_PASSWORD": PASSWORD,
        "AWS_ACCESS_KEY_ID": "AKIAEXPLAINTEST0001",
        "AWS_SECRET_ACCESS_KEY": "explain-Secret-Key-55",
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "explain-Secret-Key-55",
    }
    result = cfw(["run", "--explain", "--env", "tes"], project, env=secrets)
    assert result.code == 0, result.output[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["rule"], r["kind"]) for r in lines] == [("make", "tes"), ("make", "tes")]
    for record in lines:
        task = record["submission"]
        assert request_errors(task) == [] and unknown_properties(task) == []
        assert task["resources"] == {
            "cpu_cores": 2,
            "ram_gb": 1.5,
            "disk_gb": 5.0,
            "preemptible": False,
        }
        command = task["executors"][0]["command"][2]
        assert "s3://cfw-adhoc-data-known-after-up/cfw" in command  # placeholder storage
        assert "SNAKEMAKE_STORAGE_S3_SECRET_KEY" not in task["executors"][0]["env"]
    secrets_absent(
        project,
        [result.stdout, result.stderr],
        [TOKEN, PASSWORD, "explain-Secret-Key-55", "AKIAEXPLAINTEST0001"],
    )
    assert not (project / ".cfw" / "tes" / "cfw.json").exists()  # nothing came up


PREEMPTIBLE = """
rule all:
    input: "out/done.txt"

rule make:
    output: "out/done.txt"
    resources: preemptible=True
    shell: "echo made > {output}"
"""


@pytest.mark.e2e
@pytest.mark.moto
def test_preempted_tasks_are_resubmitted_and_the_run_succeeds(tmp_path, cfw, aws_env, bucket):
    """The server reclaims the first two preemptible tasks (PREEMPTED): with
    --preemptible-retries 1, cfw resubmits the job once on spot, then once with
    preemptible false, and Snakemake sees one job that succeeded."""
    with TesServer(tokens={TOKEN}, run_commands=True, preempt=2) as server:
        project = project_with(tmp_path, server.url, bucket, snakefile=PREEMPTIBLE)
        assert cfw(["up", "tes", "--yes"], project).code == 0
        env = {"TES_TOKEN": TOKEN}
        run = cfw(["run", "--env", "tes", *FAST, "--preemptible-retries", "1"], project, env=env)
        assert run.code == 0, run.output[-3000:]
        tasks = [server.tasks[t].doc for t in server.order]
        assert [t["resources"]["preemptible"] for t in tasks] == [True, True, False]
        assert [t["state"] for t in tasks] == ["PREEMPTED", "PREEMPTED", "COMPLETE"]
        assert "job 1 (make) preempted once; again on spot (0 spot retries left)" in run.output
        assert "job 1 (make) preempted twice; now on demand" in run.output
        assert "1 jobs done, 0 failed; 2 spot preemption(s) of 1 job(s)" in run.output
        assert "1 job(s) then ran on demand" in run.output
        made = boto3.client("s3", region_name="us-east-1").get_object(
            Bucket=bucket, Key="run/out/done.txt"
        )
        assert made["Body"].read() == b"made\n"
        logs = cfw(["logs", "tes", "1"], project, env=env)
        assert logs.code == 0, logs.output
        # every attempt: the two preempted ones, then the one that ran
        assert logs.stdout.count("(spot): preempted: preempted: its machine was reclaimed") == 2
        assert "the preemptible instance was reclaimed" in logs.stdout
        assert "succeeded" in logs.output

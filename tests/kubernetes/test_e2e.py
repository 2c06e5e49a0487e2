"""A workflow end to end on kind `kubernetes`: real Snakemake and cfw's executor, the fake
Kubernetes API server (support/fake_kube.py) with a fake node that runs each pod's command
(support/fake_kubelet.py), and S3 storage on moto. What a Job's pod knows comes only from
its manifest and the run's Secret, so a run that succeeds shows that the manifests and the
Secret carry what jobs need; then `cfw down` verifies nothing is left. Also: a failing
job's log, and Ctrl-C cancelling the jobs that run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

from support.fake_kube import FakeKube
from support.fake_kubelet import FakeKubelet
from support.kubeconfig import write_kubeconfig

pytestmark = [pytest.mark.e2e, pytest.mark.moto, pytest.mark.timeout(600)]

SNAKEFILE = """
SAMPLES = ["a", "b"]

rule all:
    input: "results/summary.txt"

rule count:
    input: "data/{s}.txt"
    output: "counts/{s}.txt"
    resources: mem_mb=500
    shell: "wc -w < {input} > {output}"

rule summary:
    input: expand("counts/{s}.txt", s=SAMPLES)
    output: "results/summary.txt"
    shell: "cat {input} > {output}"

rule broken:
    output: "results/broken.txt"
    shell: "echo 'the tool said: no such reference' >&2; exit 3"

rule slow:
    output: "results/slow.txt"
    shell: "sleep 300; touch {output}"
"""
NS = "snakemake"
# not the stock Snakemake image: the job command installs no storage plugin (no PyPI here)
IMAGE = "registry.example.org/lab/snakemake-cfw:9.27.1"


@pytest.fixture
def bucket(aws_env) -> str:
    name = f"cfw-k8s-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def cluster(tmp_path):
    fake = FakeKube()
    for resource, ns, name in (("namespaces", "", NS), ("serviceaccounts", NS, "default")):
        fake._store(resource, ns, {"kind": "x", "metadata": {"name": name}})
    node = FakeKubelet(fake)
    kubeconfig = write_kubeconfig(tmp_path / "kube" / "config", fake.url, fake.token)
    yield fake, node, {"KUBECONFIG": str(kubeconfig)}
    node.close()
    fake.close()
    assert node.errors == []


def workflow(tmp_path: Path, bucket: str) -> Path:
    project = tmp_path / "wf"
    (project / "data").mkdir(parents=True)
    (project / "data" / "a.txt").write_text("one two three\n")
    (project / "data" / "b.txt").write_text("four five\n")
    (project / "Snakefile").write_text(SNAKEFILE)
    (project / "environments").mkdir()
    config = {
        "kind": "kubernetes",
        "namespace": NS,
        "create_namespace": False,
        "image": IMAGE,
        "storage": {"prefix": f"s3://{bucket}/runs"},
    }
    (project / "environments" / "kubernetes.yaml").write_text(yaml.safe_dump(config))
    return project


def cfw_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "cfw", *args]


def run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    full.pop("CFW_DEBUG", None)
    return subprocess.run(
        cfw_args(*args), cwd=project, env=full, capture_output=True, text=True, timeout=500
    )


def test_a_workflow_runs_as_kubernetes_jobs_and_down_leaves_nothing(
    tmp_path, bucket, aws_env, cluster
):
    fake, node, kube_env = cluster
    project = workflow(tmp_path, bucket)
    up = run(project, kube_env, "up", "kubernetes", "--yes")
    assert up.returncode == 0, up.stderr[-3000:]
    fake.reset_calls()
    result = run(
        project,
        kube_env,
        "run",
        "--env",
        "kubernetes",
        "--download",
        "--seconds-between-status-checks",
        "1",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert (project / "results" / "summary.txt").read_text().split() == ["3", "2"]
    assert len(node.started) == 3  # count a, count b, summary: each a pod of its own
    # the storage keys reached the jobs through the run's Secret, and only through it
    secret_key = aws_env["AWS_SECRET_ACCESS_KEY"]
    creates = [c for c in fake.calls if c == ("create", "secrets")]
    assert len(creates) == 1
    assert fake.all("secrets") == []  # deleted at the end of the run
    for job in fake.all("jobs"):
        text = json.dumps(job)
        assert secret_key not in text and "AKIA" not in text
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    # status: one list of the run's Jobs per cycle, never a call per job
    assert fake.count("get", "jobs") == 0
    assert fake.count("list", "jobs") >= 2
    assert fake.count("list", "pods") == 0  # nothing failed or waited long: no pod looked at

    down = run(project, kube_env, "down", "kubernetes", "--yes")
    assert down.returncode == 0, down.stderr[-3000:]
    assert not (project / ".cfw" / "kubernetes").exists()
    assert fake.all("jobs") == [] and fake.all("pods") == [] and fake.all("secrets") == []


def test_a_failing_job_has_its_log_saved(tmp_path, bucket, aws_env, cluster):
    _, _, kube_env = cluster
    project = workflow(tmp_path, bucket)
    assert run(project, kube_env, "up", "kubernetes", "--yes").returncode == 0
    result = run(
        project,
        kube_env,
        "run",
        "--env",
        "kubernetes",
        "results/broken.txt",
        "--seconds-between-status-checks",
        "1",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    # the rule exits 3; the job's Snakemake, the container's process, then exits 1
    assert "failed: exit code 1; log saved to" in result.stdout + result.stderr
    logs = list((project / ".cfw" / "kubernetes" / "runs").glob("*/logs/*.log"))
    assert len(logs) == 1
    assert "the tool said: no such reference" in logs[0].read_text()
    assert run(project, kube_env, "down", "kubernetes", "--yes").returncode == 0


def test_ctrl_c_cancels_the_running_jobs(tmp_path, bucket, aws_env, cluster):
    fake, node, kube_env = cluster
    project = workflow(tmp_path, bucket)
    assert run(project, kube_env, "up", "kubernetes", "--yes").returncode == 0
    env = {**os.environ, **kube_env}
    env.pop("CFW_DEBUG", None)
    proc = subprocess.Popen(
        cfw_args(
            "run", "--env", "kubernetes", "results/slow.txt", "--seconds-between-status-checks", "1"
        ),
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not node.running and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.5)
        assert node.running, "the slow job never started"
        [running] = list(node.running.values())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr
    assert running.proc.poll() is not None  # its Job was deleted: the node stopped the pod
    assert fake.all("jobs") == [] and fake.all("secrets") == []
    assert fake.count("delete", "jobs") >= 1
    assert run(project, kube_env, "down", "kubernetes", "--yes").returncode == 0

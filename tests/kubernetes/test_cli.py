"""`cfw` with kind `kubernetes`, as a user runs it: `--explain` with no cluster and without the
kubernetes package; `up` that checks your permissions first (SelfSubjectAccessReviews of
the fake API server) and names what is missing, creating nothing; `up`, `status` and
`down` of an existing namespace (Terraform with nothing to create), `down` deleting what
cfw left there by label and verifying."""

from __future__ import annotations

import json
import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cfw.backends._kube.rbac import role_rules
from cfw.backends.kubernetes.cloud import RUN_RULES
from support.fake_kube import FakeKube
from support.fake_kubelet import FakeKubelet
from support.kubeconfig import write_kubeconfig

SNAKEFILE = """
rule all:
    input: expand("results/{s}.txt", s=["a", "b"]), "results/gpu.txt"

rule simulate:
    output: "raw/{s}.txt"
    resources: mem_mb=3000, runtime=20, preemptible=True
    shell: "echo {wildcards.s} > {output}"

rule summarise:
    input: "raw/{s}.txt"
    output: "results/{s}.txt"
    threads: 2
    resources: mem_mb=6000, disk_mb=20000, machine_type="m5"
    shell: "wc -c {input} > {output}"

rule gpu:
    output: "results/gpu.txt"
    resources: gpu=1, gpu_model="t4"
    shell: "nvidia-smi > {output}"
"""
CONFIG = {
    "kind": "kubernetes",
    "context": "lab",
    "namespace": "snakemake",
    "storage": {"prefix": "s3://lab-bucket/cfw"},
    "node_pools": [
        {
            "name": "general",
            "selector": {"node.kubernetes.io/instance-type": "m5.2xlarge"},
            "cpu": 7.9,
            "memory_mb": 30000,
        },
        {"name": "spot", "spot_preset": "eks", "cpu": 7.9, "memory_mb": 30000},
        {
            "name": "gpu",
            "selector": {"nvidia.com/gpu.product": "Tesla-T4"},
            "gpus": 1,
            "gpu_model": "t4",
        },
    ],
}
SECRET = "s3cr3t-aws-key-for-explain-4b1d"


def project_with(tmp_path: Path, **settings) -> Path:
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True, exist_ok=True)
    (project / "Snakefile").write_text(SNAKEFILE)
    config = {**CONFIG, **settings}
    (project / "environments" / "kubernetes.yaml").write_text(yaml.safe_dump(config))
    return project


def test_explain_needs_no_cluster_and_no_kubernetes_package(cfw, tmp_path):
    project = project_with(tmp_path)
    stub = tmp_path / "no-sdk" / "kubernetes"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'kubernetes'\", name='kubernetes')\n"
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(stub.parent), os.environ.get("PYTHONPATH", "")]),
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "AWS_ACCESS_KEY_ID": "AKIAEXPLAINEXPLAIN01",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    result = cfw(["run", "--explain", "--env", "kubernetes"], cwd=project, env=env)
    assert result.code == 0, result.output
    assert SECRET not in result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["rule"] for r in records) == [
        "gpu",
        "simulate",
        "simulate",
        "summarise",
        "summarise",
    ]
    for record in records:
        assert record["kind"] == "kubernetes"
        job = record["submission"]["job"]
        kubernetes_validate.validate(job, "1.30", strict=True)
        pod = job["spec"]["template"]["spec"]
        env_refs = {e["name"] for e in pod["containers"][0]["env"]}
        assert {"SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "SNAKEMAKE_STORAGE_S3_SECRET_KEY"} <= env_refs
        assert record["submission"]["secret"]["keys"] == sorted(env_refs)
        assert "s3://lab-bucket/cfw" in pod["containers"][0]["command"][2]
        if record["rule"] == "simulate":
            assert pod["nodeSelector"] == {"eks.amazonaws.com/capacityType": "SPOT"}
        else:
            # on demand: the selected pool, and never a node of the spot pool, whose only
            # label is EKS's spot label
            terms = pod["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]
            [expressions] = [t["matchExpressions"] for t in terms["nodeSelectorTerms"]]
            avoid = {
                "key": "eks.amazonaws.com/capacityType",
                "operator": "NotIn",
                "values": ["SPOT"],
            }
            assert expressions[-1] == avoid
            key = (
                "nvidia.com/gpu.product"
                if record["rule"] == "gpu"
                else "node.kubernetes.io/instance-type"
            )
            assert expressions[0]["key"] == key
        if record["rule"] == "gpu":
            assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not (project / ".cfw" / "kubernetes" / "terraform.tfstate").exists()


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


@pytest.fixture
def kubeconfig(fake, tmp_path) -> dict[str, str]:
    path = write_kubeconfig(tmp_path / "kube" / "config", fake.url, fake.token, ("lab", "prod"))
    return {"KUBECONFIG": str(path)}


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip().startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_up_names_the_permissions_you_lack_and_creates_nothing(cfw, tmp_path, fake, kubeconfig):
    fake.user = "alice"
    rules = [r for r in role_rules(RUN_RULES) if r["resources"] != ["pods/log"]]
    fake.bind("snakemake", rules)
    project = project_with(tmp_path, create_namespace=False)
    result = cfw(["up", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    assert result.code == 2, result.output
    error = one_line_error(result)
    assert "you may not run jobs in namespace snakemake: missing get pods/log" in error
    assert not (project / ".cfw" / "kubernetes").exists()
    fake.reset_calls()
    created = cfw(["up", "kubernetes", "--yes"], cwd=project_with(tmp_path), env=kubeconfig)
    assert created.code == 2
    assert "you may not create namespace snakemake" in created.stderr
    assert "missing create namespaces, create serviceaccounts" in created.stderr
    assert "set create_namespace: false" in created.stderr
    assert {verb for verb, _ in fake.calls} == {"create"}  # access reviews, nothing else


def test_a_context_not_in_the_kubeconfig_is_named_with_the_ones_there(cfw, tmp_path, kubeconfig):
    project = project_with(tmp_path, context="staging", create_namespace=False)
    result = cfw(["up", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    assert result.code == 2
    assert "context 'staging' is not in kubeconfig" in one_line_error(result)
    assert "use one of: lab, prod" in result.stderr


def test_up_status_down_of_an_existing_namespace(cfw, tmp_path, fake, kubeconfig):
    fake.user = "alice"
    fake.bind("snakemake", role_rules(RUN_RULES), name="cfw-runner")
    fake.enforce_rbac = True
    for resource, ns, name in (
        ("namespaces", "", "snakemake"),
        ("serviceaccounts", "snakemake", "default"),
    ):
        fake._store(resource, ns, {"kind": "x", "metadata": {"name": name}})
    project = project_with(tmp_path, create_namespace=False)
    up = cfw(["up", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    assert up.code == 0, up.output
    state = project / ".cfw" / "kubernetes"
    outputs = json.loads((state / "outputs.json").read_text())
    assert (outputs["namespace"], outputs["jobs_service_account"]) == ("snakemake", "default")
    env_id = outputs["cfw_id"]
    assert json.loads((state / "terraform.tfstate").read_text())["resources"] == []
    # a run that crashed left a Job (with its pod) and its Secret; another environment
    # shares the namespace
    for who, run in ((env_id, "crashed"), ("other-123456", "theirs")):
        labels = {"app.kubernetes.io/managed-by": "cfw", "cfw-id": who, "cfw-run": run}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"cfw-{run}-1-a-a1", "labels": labels},
            "spec": {
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "job", "image": "x", "command": ["sleep", "600"]}]
                    },
                }
            },
        }
        fake.enforce_rbac = False
        fake._store("jobs", "snakemake", job)
        fake._create_pod(job)
        fake._store(
            "secrets",
            "snakemake",
            {"kind": "Secret", "metadata": {"name": f"cfw-{run}-env", "labels": labels}},
        )
        fake.enforce_rbac = True
    status = cfw(["status", "kubernetes", "--json"], cwd=project, env=kubeconfig)
    assert status.code == 0, status.output
    [row] = json.loads(status.stdout)
    assert row["state"] == "up"
    assert row["details"] == {
        "nodes": "unknown (no permission to list nodes)",
        "jobs": {"pending": 1},
    }
    node = FakeKubelet(fake)  # it plays the garbage collector for the foreground deletes
    try:
        down = cfw(["down", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    finally:
        node.close()
    assert node.errors == []
    assert down.code == 0, down.output
    assert f"verifying that nothing tagged cfw-id={env_id} is left" in down.output
    assert not state.exists()
    left = {(r, name) for (r, ns, name) in fake.objects if ns == "snakemake"}
    assert ("jobs", "cfw-crashed-1-a-a1") not in left and ("secrets", "cfw-crashed-env") not in left
    assert {("jobs", "cfw-theirs-1-a-a1"), ("secrets", "cfw-theirs-env")} <= left
    again = cfw(["down", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    assert again.code == 0 and "nothing to destroy" in again.output


def test_down_that_cannot_verify_keeps_the_environment(cfw, tmp_path, fake, kubeconfig):
    project = project_with(tmp_path, create_namespace=False)
    for resource, ns, name in (
        ("namespaces", "", "snakemake"),
        ("serviceaccounts", "snakemake", "default"),
    ):
        fake._store(resource, ns, {"kind": "x", "metadata": {"name": name}})
    assert cfw(["up", "kubernetes", "--yes"], cwd=project, env=kubeconfig).code == 0
    fake.forbidden = {"secrets"}
    down = cfw(["down", "kubernetes", "--yes"], cwd=project, env=kubeconfig)
    assert down.code == 1
    assert "refused to list Secrets in snakemake: 403" in down.stderr
    assert "run `cfw down kubernetes` again" in down.stderr
    assert (project / ".cfw" / "kubernetes").exists()
    fake.forbidden = set()
    assert cfw(["down", "kubernetes", "--yes"], cwd=project, env=kubeconfig).code == 0

"""modules/kubernetes-namespace and the `kubernetes` root modules, checked without the
kubernetes provider (it cannot be downloaded here): terraform fmt -check, a parse of every
file (python-hcl2, checkov's parser), checkov with only reasoned inline skips, references
that resolve, the module's validations and locals evaluated by real Terraform (they need no
provider), the Role's rules equal to what cfw checks a runner for, and the golden render
(tests/core/test_render.py). The root of an existing namespace needs no provider at all:
it is applied for real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cfw.backends.kubernetes.cloud import RUN_RULES
from cfw.backends.registry import resolve
from cfw.orchestration.lifecycle import Lifecycle
from conftest import REPO
from support.checkov import checkov_executable, checkov_venv, run_checkov, unreasoned
from support.render import render_example

MODULE = REPO / "modules" / "kubernetes-namespace"
_PARSE = r"""
import json, sys, hcl2
out = {}
for path in sys.argv[1:]:
    with open(path) as handle:
        out[path] = hcl2.load(handle)
print(json.dumps(out, default=str))
"""


def terraform(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args, "-no-color"], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    python = checkov_venv() / "bin" / "python"
    files = sorted(str(p) for p in MODULE.glob("*.tf"))
    proc = subprocess.run(
        [str(python), "-c", _PARSE, *files], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return {Path(k).name: v for k, v in json.loads(proc.stdout).items()}


def resources(parsed) -> dict[str, dict]:
    return {
        f"{kind}.{name}": body
        for block in parsed["main.tf"]["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }


def test_module_files_fmt_and_readme():
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (MODULE / name).exists(), name
    check = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    readme = (MODULE / "README.md").read_text()
    assert 'module "namespace"' in readme and 'provider "kubernetes"' in readme


def test_every_file_parses_and_references_resolve(parsed):
    variables = {name for block in parsed["variables.tf"]["variable"] for name in block}
    made = set(resources(parsed))
    locals_ = {k for block in parsed["main.tf"]["locals"] for k in block}
    text = (MODULE / "main.tf").read_text() + (MODULE / "outputs.tf").read_text()
    used = set(re.findall(r"\bvar\.([a-z_]+)", text))
    assert used == variables, (used - variables, variables - used)
    assert set(re.findall(r"\b(kubernetes_[a-z0-9_]+\.[a-z_]+)\b", text)) <= made
    assert set(re.findall(r"\blocal\.([a-z_]+)", text)) <= locals_
    assert "kubernetes_namespace_v1.this" in made  # the one main resource is `this`
    for block in parsed["variables.tf"]["variable"]:
        for name, body in block.items():
            assert list(body)[:2] == ["type", "description"], f"{name}: type, then description"
            if re.match(r"^\$\{(map|list)\(", str(body["type"])):
                assert body.get("nullable") is False, f"{name}: a collection is nullable = false"


def test_nothing_cluster_wide_but_the_namespace_and_every_object_labelled(parsed):
    made = resources(parsed)
    kinds = {address.split(".")[0] for address in made}
    assert kinds == {
        "kubernetes_namespace_v1",
        "kubernetes_service_account_v1",
        "kubernetes_role_v1",
        "kubernetes_role_binding_v1",
        "kubernetes_resource_quota_v1",
        "kubernetes_limit_range_v1",
    }  # no ClusterRole, no ClusterRoleBinding, nothing else cluster-scoped
    for address, body in made.items():
        meta = body["metadata"][0] if isinstance(body["metadata"], list) else body["metadata"]
        assert "var.labels" in str(meta["labels"]), address
        if address != "kubernetes_namespace_v1.this":
            assert "kubernetes_namespace_v1.this.metadata[0].name" in str(meta["namespace"])
    for account in ("jobs", "runner"):
        body = made[f"kubernetes_service_account_v1.{account}"]
        assert body["automount_service_account_token"] in (False, [False])


def test_the_role_grants_exactly_what_cfw_checks_a_runner_for(tmp_path):
    """The module's Role (evaluated by Terraform) and cloud.RUN_RULES, the permissions
    `cfw up` with create_namespace: false asks the API about, are the same."""
    rules = evaluate_locals(tmp_path, {})["runner_rules"]
    granted = {(r["api_groups"][0], r["resources"][0], v) for r in rules for v in r["verbs"]}
    expected = {(group, resource, v) for group, resource, verbs in RUN_RULES for v in verbs}
    assert granted == expected


def evaluate_locals(tmp_path: Path, values: dict) -> dict:
    """The module's locals as Terraform computes them from VALUES (no provider needed)."""
    main = (MODULE / "main.tf").read_text()
    block = re.search(r"^locals \{\n.*?^\}\n", main, re.M | re.S).group(0)
    work = tmp_path / "locals"
    work.mkdir()
    shutil.copy(MODULE / "variables.tf", work / "variables.tf")
    names = re.findall(r"^  ([a-z_]+)\s+=", block, re.M)
    outputs = "".join(f'output "{n}" {{\n  value = local.{n}\n}}\n' for n in names)
    (work / "main.tf").write_text(block + outputs)
    tfvars = {"namespace": "snakemake", "labels": {"cfw-id": "lab-0a1b2c"}, **values}
    (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = terraform(work, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(terraform(work, "output", "-json").stdout)
    return {name: item["value"] for name, item in out.items()}


def test_quota_and_limits_become_kubernetes_objects(tmp_path):
    from cfw.backends.kubernetes.config import Limits, Quota
    from cfw.backends.kubernetes.kind import limits_var, quota_var

    quota = quota_var(Quota(cpu=64, memory_mb=262144, gpus=4, jobs=100))
    limits = limits_var(Limits(max_cpu=16, max_memory_mb=65536))
    values = evaluate_locals(tmp_path, {"quota": quota, "limits": limits})
    assert values["quota_hard"] == {
        "requests.cpu": "64",
        "limits.cpu": "64",
        "requests.memory": "262144Mi",
        "limits.memory": "262144Mi",
        "requests.nvidia.com/gpu": "4",
        "count/jobs.batch": "100",
    }
    assert values["limit_max"] == {"cpu": "16", "memory": "65536Mi"}
    assert values["limit_defaults"] == {}


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"namespace": "kube-system"}, "not default or kube-*"),
        ({"namespace": "Lab"}, "must be a DNS label"),
        ({"labels": {}}, "labels must not be empty"),
        ({"quota": {"cpu": "six"}}, "Kubernetes quantities such as 64"),
        ({"limits": {"max_memory": "8GB"}}, "Kubernetes quantities such as 2"),
        ({"pod_security_level": "strict"}, "privileged, baseline or restricted"),
        ({"runners": [{"kind": "Robot", "name": "x"}]}, "User, Group or ServiceAccount"),
        ({"runners": [{"kind": "ServiceAccount", "name": "ci"}]}, "needs its namespace"),
    ],
)
def test_the_module_validates_its_variables(tmp_path, values, fragment):
    work = tmp_path / "validate"
    work.mkdir()
    shutil.copy(MODULE / "variables.tf", work / "variables.tf")
    tfvars = {"namespace": "snakemake", "labels": {"cfw-id": "x"}, **values}
    (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    assert terraform(work, "init", "-input=false").returncode == 0
    proc = terraform(work, "plan", "-input=false")
    assert proc.returncode != 0
    assert fragment in " ".join((proc.stdout + proc.stderr).split()), proc.stderr


@pytest.fixture(scope="module")
def checkov() -> str:
    return checkov_executable()


def test_checkov_passes_with_only_reasoned_inline_skips(checkov):
    report = run_checkov(checkov, MODULE)
    assert unreasoned(report, MODULE) == []
    assert report["summary"]["passed"] >= 7  # default namespace, service accounts, wildcards
    ids = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_K8S_21", "CKV_K8S_49"} <= ids


def test_root_module_calls_the_module_with_its_variables(tmp_path, parsed):
    out = render_example("kubernetes", tmp_path / "kubernetes")
    main = (out / "main.tf").read_text()
    call = re.search(r'module "namespace" \{(.*?)\n\}', main, re.S).group(1)
    passed = set(re.findall(r"^\s+([a-z_]+)\s+=", call, re.M)) - {"source"}
    declared = {
        name: body for block in parsed["variables.tf"]["variable"] for name, body in block.items()
    }
    assert passed == set(declared)
    values = json.loads((out / "terraform.tfvars.json").read_text())
    assert set(values) == set(re.findall(r'^variable "([a-z_]+)"', main, re.M))
    assert 'provider "kubernetes" {\n  config_context = var.context\n}' in main
    assert values["context"] == "lab-cluster" and values["namespace"] == "snakemake"


def existing_namespace_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True)
    config = {
        "kind": "kubernetes",
        "namespace": "team-a",
        "create_namespace": False,
        "service_account": "pipelines",
        "storage": {"prefix": "s3://lab-bucket/cfw"},
    }
    (project / "environments" / "kubernetes.yaml").write_text(yaml.safe_dump(config))
    return project


def test_an_existing_namespace_root_creates_nothing_and_needs_no_provider(tmp_path):
    project = existing_namespace_project(tmp_path)
    lifecycle = Lifecycle(project, environ={})
    resolved = resolve(project, "kubernetes", environ={})
    out = lifecycle.render_to(resolved, tmp_path / "root")
    main = (out / "main.tf").read_text()
    assert 'provider "' not in main and "required_providers" not in main and 'module "' not in main
    assert resolved.kind.terraform_env(resolved.config, {}) == {}
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = terraform(out, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    outputs = json.loads(terraform(out, "output", "-json").stdout)
    assert {k: v["value"] for k, v in outputs.items() if k != "cfw_labels"} == {
        "namespace": "team-a",
        "jobs_service_account": "pipelines",
        "cfw_id": outputs["cfw_id"]["value"],
    }
    state = json.loads((out / "terraform.tfstate").read_text())
    assert state["resources"] == []


def test_terraform_reads_the_kubeconfig_kubectl_reads(tmp_path):
    project = tmp_path / "p"
    (project / "environments").mkdir(parents=True)
    (project / "environments" / "kubernetes.yaml").write_text(
        "kind: kubernetes\nstorage: {prefix: 's3://b/c'}\n"
    )
    resolved = resolve(project, "kubernetes", environ={})
    env = resolved.kind.terraform_env(resolved.config, {"KUBECONFIG": "/a/one:/b/two"})
    assert env == {"KUBE_CONFIG_PATHS": "/a/one:/b/two"}
    home = resolved.kind.terraform_env(resolved.config, {"HOME": "/home/alice"})
    assert home == {"KUBE_CONFIG_PATHS": "/home/alice/.kube/config"}

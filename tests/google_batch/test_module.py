"""modules/google-batch and its root module: terraform fmt, a parse of every file, what the
module must create (checked on the parsed HCL), checkov, and the wiring between the
rendered root module, its tfvars and the module.

The google provider cannot be downloaded here, so `terraform validate` cannot run; the
golden render itself is tests/test_render.py's (tests/golden/google-batch/).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from support.checkov import checkov_executable, run_checkov
from support.render import render_example

MODULE = Path(__file__).resolve().parents[2] / "modules" / "google-batch"


def unq(value):
    """python-hcl2 keeps the quotes of strings (and block labels) in newer versions."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


def blocks(doc: dict, kind: str) -> dict[str, dict]:
    """{name: body} of `variable`/`output`/`module` blocks."""
    return {unq(k): v for item in doc.get(kind, []) for k, v in item.items()}


def resources(doc: dict) -> dict[str, dict]:
    """{"type.name": body} of every resource (and data source, as "data.type.name")."""
    found = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for item in doc.get(kind, []):
            for rtype, named in item.items():
                for name, body in named.items():
                    found[f"{prefix}{unq(rtype)}.{unq(name)}"] = body
    return found


@pytest.fixture(scope="module")
def module() -> dict:
    merged: dict = {}
    for path in sorted(MODULE.glob("*.tf")):
        for key, value in load(path).items():
            merged.setdefault(key, []).extend(value)
    return merged


def test_module_is_terraform_fmt_clean():
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_file_parses(tmp_path: Path):
    out = render_example("google-batch", tmp_path / "root")
    copied = out / "modules" / "google-batch"
    files = [*MODULE.glob("*.tf"), out / "main.tf", *copied.glob("*.tf")]
    assert len(files) >= 9
    for path in files:
        assert load(path), f"{path} parsed to nothing"
    assert (MODULE / "README.md").read_text().count("```hcl") == 1


def test_variables_are_typed_described_and_validated(module):
    variables = blocks(module, "variable")
    for name, body in variables.items():
        keys = [k for k in body if k != "__is_block__"]
        assert keys[:2] == ["type", "description"], f"variable {name}: type, then description"
        if re.match(r"\$\{(list|map|set|object)\(", str(body["type"])):
            assert body.get("nullable") is False, f"collection {name}: nullable = false"
    for name in (
        "project",
        "region",
        "name",
        "bucket_name",
        "bucket_retention_days",
        "subnet_cidr",
    ):
        assert variables[name].get("validation"), f"variable {name} needs a validation block"


def test_outputs_the_issue_asks_for(module):
    outputs = blocks(module, "output")
    for name in (
        "project",
        "region",
        "bucket",
        "service_account",
        "network",
        "subnetwork",
        "network_tag",
        "secret_prefix",
    ):
        assert unq(outputs[name]["description"]), name


def test_provider_pinned_with_an_upper_bound(module):
    terraform = module["terraform"][0]
    assert unq(terraform["required_version"]) == ">= 1.5, < 2.0"
    google = terraform["required_providers"][0]["google"]
    assert unq(google["source"]) == "hashicorp/google"
    assert re.fullmatch(r">= [\d.]+, < \d+\.0", unq(google["version"]))  # upper-bounded


def test_apis_service_account_and_roles(module):
    text = (MODULE / "main.tf").read_text()
    apis = re.search(r"apis = toset\(\[(.*?)\]\)", text, re.S).group(1)
    for api in ("batch", "compute", "logging", "storage", "secretmanager", "iam"):
        assert f'"{api}.googleapis.com"' in apis
    res = resources(module)
    assert res["google_project_service.apis"]["disable_on_destroy"] is False
    assert unq(res["google_service_account.this"]["account_id"]) == "${var.name}"
    roles = re.search(r"job_roles = toset\(\[(.*?)\]\)", text, re.S).group(1)
    for role in ("roles/batch.agentReporter", "roles/logging.logWriter"):
        assert role in roles
    secrets = res["google_project_iam_member.secrets"]
    assert unq(secrets["role"]) == "roles/secretmanager.secretAccessor"
    assert "startsWith" in secrets["condition"][0]["expression"]  # only this env's secrets
    bucket_roles = res["google_storage_bucket_iam_member.data"]["for_each"]
    assert "roles/storage.objectAdmin" in bucket_roles
    assert unq(res["google_storage_bucket_iam_member.data"]["member"]) == "${local.member}"


def test_bucket_is_uniform_private_expiring_and_destroyable(module):
    bucket = resources(module)["google_storage_bucket.data"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["force_destroy"] is True
    assert unq(bucket["public_access_prevention"]) == "enforced"
    assert unq(bucket["labels"]) == "${var.labels}"
    rules = {
        unq(r["action"][0]["type"]): unq(r["condition"][0]["age"]) for r in bucket["lifecycle_rule"]
    }
    assert rules["Delete"] == "${var.bucket_retention_days}"


def test_network_and_firewall_for_job_vms(module):
    res = resources(module)
    assert res["google_compute_network.this"]["auto_create_subnetworks"] is False
    assert res["google_compute_subnetwork.this"]["private_ip_google_access"] is True
    deny = res["google_compute_firewall.deny_ingress"]
    assert unq(deny["direction"]) == "INGRESS"
    assert unq(deny["deny"][0]["protocol"]) == "all"
    assert [unq(t) for t in deny["target_tags"]] == ["${local.tag}"]
    assert unq(res["google_compute_router_nat.this"]["count"]) == "${var.enable_nat ? 1 : 0}"


def test_root_module_tfvars_and_module_agree(tmp_path: Path):
    """Every tfvar is a root variable and back; the module call passes only declared
    variables, and every module variable without a default."""
    out = render_example("google-batch", tmp_path / "root")
    root = load(out / "main.tf")
    tfvars = json.loads((out / "terraform.tfvars.json").read_text())
    assert set(blocks(root, "variable")) == set(tfvars)
    call = blocks(root, "module")["google_batch"]
    passed = {k for k in call if k not in ("source", "__is_block__")}
    declared = blocks(load(MODULE / "variables.tf"), "variable")
    assert passed <= set(declared)
    assert {n for n, body in declared.items() if "default" not in body} <= passed
    assert tfvars["labels"]["cfw-id"] == tfvars["env_id"]
    assert "goog" not in tfvars["resource_name"]  # GCS refuses bucket names with it
    for output in ("project", "region", "bucket", "service_account", "network"):
        assert output in blocks(root, "output")


@pytest.fixture(scope="session")
def checkov() -> str:
    return checkov_executable()


def test_checkov_is_clean_or_skipped_with_a_reason(checkov):
    report = run_checkov(checkov, MODULE)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 20
    text = "".join(p.read_text() for p in MODULE.glob("*.tf"))
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{check['check_id']} is skipped without a reason"
        assert f"#checkov:skip={check['check_id']}:" in text


def test_names_cfw_predicts_before_up_are_the_ones_the_module_gives(module):
    """`--explain` before `up` shows names derived from the id (kind.names): same rules."""
    from cfw.backends.google_batch.config import GoogleBatchConfig
    from cfw.backends.google_batch.kind import names, resource_name

    res = resources(module)
    base = "${var.name}"
    assert (
        unq(res["google_storage_bucket.data"]["name"])
        == '${coalesce(var.bucket_name, "${var.name}-data")}'
    )
    for rtype in (
        "google_service_account.this",
        "google_compute_network.this",
        "google_compute_subnetwork.this",
    ):
        key = "account_id" if "account" in rtype else "name"
        assert unq(res[rtype][key]) == base, rtype
    text = (MODULE / "main.tf").read_text()
    assert "tag           = var.name" in text and 'secret_prefix = "${var.name}-"' in text
    config = GoogleBatchConfig(project="example-project", region="europe-west4")
    predicted = names(config, "google-batch-0a1b2c")
    rn = resource_name("google-batch-0a1b2c")
    assert rn == "gcp-batch-0a1b2c"
    assert predicted == {
        "bucket": f"{rn}-data",
        "service_account": f"{rn}@example-project.iam.gserviceaccount.com",
        "network": f"projects/example-project/global/networks/{rn}",
        "subnetwork": f"projects/example-project/regions/europe-west4/subnetworks/{rn}",
        "network_tag": rn,
        "secret_prefix": f"{rn}-",
    }

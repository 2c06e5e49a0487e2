"""modules/google-batch and its root module: what the module must create (checked on the
parsed HCL), checkov's coverage of it, and the wiring between the rendered root module, its
tfvars and the module. The checks every module shares (fmt, parse, files, variables,
outputs, versions, README, checkov clean with reasoned skips) are
tests/core/test_modules.py's.

The google provider cannot be downloaded here, so `terraform validate` cannot run; the
golden render itself is tests/test_render.py's (tests/golden/google-batch/).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.checkov import module_report
from support.hcl import blocks, load, load_module, resources, unq
from support.render import render_example

MODULE = Path(__file__).resolve().parents[2] / "modules" / "google-batch"


@pytest.fixture(scope="module")
def module() -> dict:
    return load_module(MODULE)


def test_rendered_root_and_its_copy_of_the_module_parse(tmp_path: Path):
    out = render_example("google-batch", tmp_path / "root")
    copied = out / "modules" / "google-batch"
    files = [*MODULE.glob("*.tf"), out / "main.tf", *copied.glob("*.tf")]
    assert len(files) >= 9
    for path in files:
        assert load(path), f"{path} parsed to nothing"


def test_variables_are_validated_and_objects_not_nullable(module):
    """(Type, then description, and collections not nullable: tests/core/test_modules.py.)"""
    variables = blocks(module, "variable")
    for name, body in variables.items():
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


def test_checkov_checks_the_module_and_skips_in_one_spelling():
    """Clean and reasoned: tests/core/test_modules.py; here, that checkov saw the module and
    that every skip is spelled `#checkov:skip=ID:`."""
    report = module_report(MODULE)
    assert report["summary"]["passed"] > 20
    text = "".join(p.read_text() for p in MODULE.glob("*.tf"))
    for check in report["results"]["skipped_checks"]:
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

"""modules/gke-cluster and the rendered gke root module, checked without the google provider
(it cannot be downloaded here): what the module must create (on its HCL, parsed by
checkov's python-hcl2), checkov's coverage of it, and the root module's call. The checks
every module shares (fmt, parse, files, variables, references, README, checkov clean with
reasoned skips) are tests/core/test_modules.py's; the golden render is
tests/core/test_render.py's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from support.checkov import checkov_venv, module_report
from support.render import render_example

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "modules" / "gke-cluster"

_PARSE = r"""
import json, sys, hcl2
out = {}
for path in sys.argv[1:]:
    with open(path) as handle:
        out[path] = hcl2.load(handle)
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def checkov() -> Path:
    return checkov_venv()


@pytest.fixture(scope="module")
def parsed(checkov) -> dict[str, dict]:
    """Every .tf file of the module, parsed by python-hcl2 (checkov's own parser)."""
    files = sorted(str(p) for p in MODULE.glob("*.tf"))
    proc = subprocess.run(
        [str(checkov / "bin" / "python"), "-c", _PARSE, *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {Path(k).name: v for k, v in json.loads(proc.stdout).items()}


def test_the_cluster_is_the_modules_this(parsed):
    resources = {
        f"{kind}.{name}"
        for block in parsed["main.tf"]["resource"]
        for kind, named in block.items()
        for name in named
    }
    assert "google_container_cluster.this" in resources  # the one main resource is `this`


def one(value):
    """python-hcl2 wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_teardown_friendly_and_labelled(parsed):
    main = (MODULE / "main.tf").read_text()
    assert "deletion_protection = false" in main
    assert re.search(r"force_destroy\s+=\s+true", main)
    blocks = {
        f"{kind}.{name}": body
        for block in parsed["main.tf"]["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }
    labelled = {
        "google_container_cluster.this": "resource_labels",
        "google_storage_bucket.data": "labels",
    }
    for address, key in labelled.items():
        assert one(blocks[address][key]) == "${var.labels}", address
    for pool in ("google_container_node_pool.system", "google_container_node_pool.jobs"):
        config = one(blocks[pool]["node_config"])
        assert one(config["resource_labels"]) == "${var.labels}"
        assert one(one(config["workload_metadata_config"])["mode"]) == "GKE_METADATA"
        management = one(blocks[pool]["management"])
        assert one(management["auto_repair"]) is True and one(management["auto_upgrade"]) is True
    jobs = blocks["google_container_node_pool.jobs"]
    assert one(one(jobs["autoscaling"])["total_min_node_count"]) == 0
    cluster = blocks["google_container_cluster.this"]
    assert one(one(cluster["workload_identity_config"])["workload_pool"]) == (
        "${local.workload_pool}"
    )


def test_checkov_checks_the_module():
    """Clean and reasoned: tests/core/test_modules.py; here, that checkov saw the module."""
    assert module_report(MODULE)["summary"]["passed"] > 30


def test_root_module_calls_the_module_with_its_variables(tmp_path, parsed):
    out = render_example("gke", tmp_path / "gke")
    main = (out / "main.tf").read_text()
    call = re.search(r'module "gke_cluster" \{(.*?)\n\}', main, re.S).group(1)
    passed = set(re.findall(r"^\s+([a-z_]+)\s+=", call, re.M)) - {"source"}
    declared = {
        name: body for block in parsed["variables.tf"]["variable"] for name, body in block.items()
    }
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= passed <= set(declared), (required - passed, passed - set(declared))
    values = json.loads((out / "terraform.tfvars.json").read_text())
    root_vars = set(re.findall(r'^variable "([a-z_]+)"', main, re.M))
    assert set(values) == root_vars
    assert 'provider "google"' in main and "default_labels = var.labels" in main
    for name, pool in values["node_pools"].items():
        assert re.match(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", name)
        assert pool["spot"] == name.startswith("spot-")
    for key in ("jobs_account_id", "nodes_account_id"):
        assert re.match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", values[key]), values[key]
    assert re.match(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", values["bucket_name"])

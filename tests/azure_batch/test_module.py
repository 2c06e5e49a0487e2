"""modules/azure-batch and its root module: what the module must create, checkov's
coverage of it, and secrets that reach Terraform only through its environment, never a
rendered file. The checks every module shares (fmt, parse, files, variables, README,
checkov clean with reasoned skips) are tests/core/test_modules.py's; the golden render is
tests/core/test_render.py's.

The azurerm provider cannot be downloaded here, so `terraform validate` cannot run.
checkov runs from its own virtualenv (tests/support/checkov.py).
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from cfw.backends.azure_batch.kind import KIND
from cfw.backends.kind import Identity
from cfw.backends.registry import resolve
from cfw.orchestration.lifecycle import Lifecycle
from support.checkov import module_report

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "modules" / "azure-batch"
SAS = "https://sa.blob.core.windows.net/s/start.sh?sv=2024&sig=TOPSECRETSIGNATURE"
PASSWORD = "registry-password-never-in-files"


def test_checkov_checks_the_module_and_skips_inline():
    """Clean and reasoned: tests/core/test_modules.py; here, that checkov saw the module."""
    report = module_report(MODULE)
    summary = report["summary"]
    assert summary["passed"] > 0 and summary["resource_count"] >= 10
    assert re.findall(
        r"#checkov:skip=([A-Z0-9_]+)", "\n".join(p.read_text() for p in MODULE.glob("*.tf"))
    )


def test_module_follows_the_issue():
    main = (MODULE / "main.tf").read_text()
    variables = (MODULE / "variables.tf").read_text()
    assert "is_hns_enabled                  = false" in main
    assert 'storage_account_authentication_mode = "BatchAccountManagedIdentity"' in main
    assert '"Storage Blob Data Contributor"' in main and '"AcrPull"' in main
    assert re.search(
        r"auto_scale \{\s+evaluation_interval = var\.autoscale_evaluation_interval", main
    )
    assert 'default     = "PT5M"' in variables
    assert "max_tasks_per_node  = each.value.task_slots_per_node" in main
    assert 'type                  = "DockerCompatible"' in main
    assert re.search(r'variable "start_task_sas_url" \{[^}]*sensitive   = true', variables)
    assert re.search(r'variable "registry_password" \{[^}]*sensitive   = true', variables)
    for resource in re.findall(r'resource "(azurerm_[a-z_]+)" "(\w+)" \{', main):
        header = f'resource "{resource[0]}" "{resource[1]}"'
        block = main.split(header, 1)[1].split("\nresource ")[0]
        if resource[0] in (
            "azurerm_resource_group",
            "azurerm_storage_account",
            "azurerm_batch_account",
            "azurerm_user_assigned_identity",
            "azurerm_container_registry",
        ):
            assert "tags" in block, f"{resource} has no tags"
    assert "metadata            = local.metadata" in main  # pools carry the labels too


def test_secrets_reach_terraform_only_through_its_environment(tmp_path):
    project = REPO
    environ = {
        "BATCH_NODE_START_TASK_SAS_URL": SAS,
        "BATCH_CONTAINER_REGISTRY_PASS": PASSWORD,
        "AZURE_CLIENT_ID": "cid",
        "AZURE_CLIENT_SECRET": "client-secret-value",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000bbbb",
    }
    resolved = resolve(
        project, "azure-batch", overrides=["registry.username=puller"], environ=environ
    )
    lifecycle = Lifecycle(project, environ=environ)
    tf = lifecycle.terraform(resolved, tmp_path / "out")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    lifecycle.render(
        resolved,
        Identity("azure-batch", "azure-batch", "azure-batch-0a1b2c", created, None),
        tmp_path / "out",
        tf,
    )
    rendered = "".join(text_of(p) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "cfw_guard/function.json" in rendered  # the guard's zip was read, entry by entry
    for secret in (SAS, "TOPSECRETSIGNATURE", PASSWORD, "client-secret-value"):
        assert secret not in rendered
    assert tf.env["TF_VAR_start_task_sas_url"] == SAS
    assert tf.env["TF_VAR_registry_password"] == PASSWORD
    assert tf.env["ARM_CLIENT_SECRET"] == "client-secret-value"
    values = json.loads((tmp_path / "out" / "terraform.tfvars.json").read_text())
    assert values["registry"] == {"server": "myregistry.azurecr.io", "username": "puller"}
    assert "start_task_sas_url" not in values and "registry_password" not in values


def text_of(path: Path) -> str:
    """A rendered file's text; of a zip (the guard's package), its entries' names and text."""
    if path.suffix != ".zip":
        return path.read_text()
    with zipfile.ZipFile(path) as archive:
        return "".join(f"{n}\n{archive.read(n).decode()}" for n in archive.namelist())


def test_start_task_script_is_uploaded_by_the_module(tmp_path):
    script = tmp_path / "setup.sh"
    script.write_text("#!/bin/bash\napt-get install -y pigz\n")
    resolved = resolve(REPO, "azure-batch", overrides=[f"start_task.script={script}"], environ={})
    ident = Identity(
        "azure-batch", "azure-batch", "azure-batch-0a1b2c", datetime(2026, 1, 1, tzinfo=UTC), None
    )
    values = KIND.tfvars(resolved.config, ident, REPO)
    assert values["start_task"]["script"] == script.read_text()

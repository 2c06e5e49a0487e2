"""What `cfw up azure-batch` adds to its root module when guard.enabled: the
modules/azure-guard call, its values (the zip, the settings, the host storage account's
name, the container of the heartbeats) and the zip itself, in guard/ beside the root.

The adapter and the names it reads are the root template's local `guard_environment`
(templates/root/azure-batch.tf.j2); the module gives the Function's identity only what
that adapter calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfw.backends.azure_batch import guard_zip
from cfw.core import guard_entry
from cfw.core.config import EnvConfig
from cfw.core.rootmodule import ModuleCall, RootSpec

GUARD_CALL = ModuleCall(
    "azure-guard",
    "guard",
    renames={
        "name": '"cfw-${var.env_id}-guard"',
        "resource_group_name": "module.azure_batch.resource_group_name",
        "host_storage_account_name": "var.guard_storage_account_name",
        "package": "local.guard_package",  # the zip's path made absolute
        "environment": "local.guard_environment",
        "settings": "var.guard_settings",
        "batch_account_id": "module.azure_batch.batch_account_id",
        "data_container_id": "module.azure_batch.storage_container_ids[var.guard_container]",
        "tags": "var.labels",
    },
)
VARIABLES = {
    "guard_package": "The guard Function's zip (relative to the root module) and its hex SHA-256.",
    "guard_container": "The blob container of the heartbeats and the guard's record.",
}
SUBDIR = "guard"  # of the rendered root module


def with_guard(spec: RootSpec, config: EnvConfig) -> RootSpec:
    """SPEC with the guard's module, when the config's guard is enabled."""
    return spec.with_module(GUARD_CALL, VARIABLES) if config.guard.enabled else spec


def tfvars(
    config: EnvConfig, labels: dict[str, str], storage_account: str, container: str
) -> dict[str, Any]:
    """The guard's values; nothing when the guard is off. STORAGE_ACCOUNT is the name of
    the Function host's own account, CONTAINER the one the heartbeats are in."""
    if not config.guard.enabled:
        return {}
    return {
        "guard_package": {
            "filename": f"{SUBDIR}/{guard_zip.filename()}",
            "sha256": guard_zip.digest(),
        },
        "guard_settings": guard_entry.module_settings(config.guard, labels),
        "guard_storage_account_name": storage_account,
        "guard_container": container,
    }


def render(config: EnvConfig, outdir: Path) -> None:
    """The zip beside the root module (outdir/guard/cfw_guard-<sha>.zip) when the guard is
    on."""
    if config.guard.enabled:
        guard_zip.write(Path(outdir) / SUBDIR)

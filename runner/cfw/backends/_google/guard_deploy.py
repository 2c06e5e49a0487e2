"""What the Google kinds (gke, google-batch) add to their root module when guard.enabled:
the modules/gcp-guard call, its values (the zip, the settings, the service account ids)
and the zip itself.

The kind's root template defines what differs per kind, as locals: `guard_name` (the
function's, the schedule's and the custom roles' name), `guard_environment` (the adapter
and the names it reads), `guard_permissions` (its least-privilege project permissions),
`guard_bucket` (the environment's bucket, which holds the zip) and `guard_store_prefix`
(where the heartbeats are in it, or null); templates/root/gke.tf.j2 and google-batch.tf.j2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfw.backends._google import guard_zip
from cfw.core import guard_entry
from cfw.core.config import EnvConfig
from cfw.core.rootmodule import ModuleCall, RootSpec

GUARD_CALL = ModuleCall(
    "gcp-guard",
    "guard",
    renames={
        "name": "local.guard_name",
        "account_ids": "var.guard_account_ids",
        "bucket": "local.guard_bucket",
        "store_prefix": "local.guard_store_prefix",
        "package": "local.guard_package",  # the zip's path made absolute
        "environment": "local.guard_environment",
        "settings": "var.guard_settings",
        "permissions": "local.guard_permissions",
    },
)
PACKAGE_VARIABLE = "The guard function's zip (relative to the root module) and its hex SHA-256."
SUBDIR = "guard"  # of the rendered root module


def with_guard(spec: RootSpec, config: EnvConfig) -> RootSpec:
    """SPEC with the guard's module, when the config's guard is enabled."""
    if not config.guard.enabled:
        return spec
    return spec.with_module(GUARD_CALL, {"guard_package": PACKAGE_VARIABLE})


def account_ids(base: str) -> dict[str, str]:
    """The function's and the schedule's service account ids (6-30 characters) for the
    environment's base name (its id, or google-batch's resource name), which keep its
    random part: `cfwg-0a1b2c-gke`, `cfws-0a1b2c-gke`."""
    name, _, suffix = base.rpartition("-")
    name, suffix = (name, suffix) if name else (base, "")

    def one(prefix: str) -> str:
        raw = "-".join(p for p in (prefix, suffix, name) if p)
        return re.sub(r"-+$", "", raw[:30])

    return {"function": one("cfwg"), "scheduler": one("cfws")}


def tfvars(config: EnvConfig, labels: dict[str, str], adapter: str, base: str) -> dict[str, Any]:
    """guard_package, guard_settings and guard_account_ids; nothing when the guard is off.
    ADAPTER is the kind's guard module ("cfw.backends.gke.guard"), BASE the name the
    service account ids keep (account_ids)."""
    if not config.guard.enabled:
        return {}
    return {
        "guard_package": {
            "filename": f"{SUBDIR}/{guard_zip.FILENAME}",
            "sha256": guard_zip.digest(adapter),
        },
        "guard_settings": guard_entry.module_settings(config.guard, labels),
        "guard_account_ids": account_ids(base),
    }


def render(config: EnvConfig, adapter: str, outdir: Path) -> None:
    """The zip beside the root module (outdir/guard/cfw_guard.zip) when the guard is on."""
    if config.guard.enabled:
        guard_zip.write(adapter, Path(outdir) / SUBDIR)


def name_of(base: str) -> str:
    """The guard's function, schedule and custom roles' name: the root's local.guard_name."""
    return f"{base}-guard"


def leftover_urls(project: str, region: str, name: str, base: str) -> dict[str, str]:
    """What of the guard `cfw down` checks is gone after destroy (a GET each: 404 is gone):
    the function, the schedule and the two service accounts. NAME is the root's
    guard_name, BASE what the account ids keep (account_ids)."""
    where = f"projects/{project}/locations/{region}"
    iam = f"https://iam.googleapis.com/v1/projects/{project}/serviceAccounts"
    urls = {
        f"guard function {name}": f"https://cloudfunctions.googleapis.com/v2/{where}/functions/{name}",
        f"guard schedule {name}": f"https://cloudscheduler.googleapis.com/v1/{where}/jobs/{name}",
    }
    for account in account_ids(base).values():
        email = f"{account}@{project}.iam.gserviceaccount.com"
        urls[f"service account {email}"] = f"{iam}/{email}"
    return urls

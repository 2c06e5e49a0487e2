"""What the AWS kinds (tibanna, tes) add to their root module when guard.enabled: the
modules/aws-guard call, its two values (the zip and the settings) and the zip itself.

The kind's root template defines what differs per kind, as locals: `guard_environment`
(the adapter and the names it reads) and `guard_statements` (its least-privilege
permissions on the environment's resources); templates/root/tibanna.tf.j2 and tes.tf.j2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfw.backends._aws import guard_zip
from cfw.backends._aws.cleanup import Finder, Leftover
from cfw.core import guard_entry
from cfw.core.config import EnvConfig
from cfw.core.rootmodule import ModuleCall, RootSpec

GUARD_CALL = ModuleCall(
    "aws-guard",
    "guard",
    renames={
        "name": '"cfw-${var.env_id}-guard"',
        "package": "local.guard_package",  # the zip's path made absolute
        "environment": "local.guard_environment",
        "settings": "var.guard_settings",
        "statements": "local.guard_statements",
        "tags": "var.labels",
    },
)
PACKAGE_VARIABLE = "The guard's Lambda zip (relative to the root module) and its base64 SHA-256."


def with_guard(spec: RootSpec, config: EnvConfig) -> RootSpec:
    """SPEC with the guard's module, when the config's guard is enabled."""
    if not config.guard.enabled:
        return spec
    return spec.with_module(GUARD_CALL, {"guard_package": PACKAGE_VARIABLE})


def tfvars(
    config: EnvConfig, labels: dict[str, str], adapter: str, filename: str
) -> dict[str, Any]:
    """guard_package and guard_settings; nothing when the guard is off. ADAPTER is the
    kind's guard module ("cfw.backends.tibanna.guard"), FILENAME where the zip is."""
    if not config.guard.enabled:
        return {}
    return {
        "guard_package": {"filename": filename, "source_code_hash": guard_zip.digest(adapter)},
        "guard_settings": guard_entry.module_settings(config.guard, labels),
    }


def render(config: EnvConfig, adapter: str, outdir: Path) -> None:
    """The zip beside the root module (outdir/lambda/cfw_guard.zip) when the guard is on."""
    if config.guard.enabled:
        guard_zip.write(adapter, outdir)


def name_of(env_id: str) -> str:
    """The guard's function, schedule group and log group name (GUARD_CALL's `name`)."""
    return f"cfw-{env_id}-guard"


def find(session: Any, env_id: str, *, roles: bool = True) -> list[Leftover]:
    """What of the guard still carries cfw-id=ENV_ID after destroy, among its names (its
    schedules carry no tags: they go with their group). ROLES: its two IAM roles too."""
    name = name_of(env_id)
    finder = Finder(session, env_id)
    found = finder.functions(lambda f: f == name)
    found += finder.log_groups(f"/aws/lambda/{name}", lambda g: g == f"/aws/lambda/{name}")
    found += finder.schedule_groups(lambda g: g == name)
    if roles:
        found += finder.iam(lambda r: r in (f"{name}-function", f"{name}-schedule"))
    return found


def leftovers(session: Any, env_id: str, *, roles: bool = True) -> list[str]:
    """:func:`find`, as the lines `cfw down` shows."""
    return [str(item) for item in find(session, env_id, roles=roles)]

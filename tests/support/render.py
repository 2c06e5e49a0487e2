"""Renders of the example environments, as `cfw up` writes them, and their golden files.

A golden file that no longer matches the render fails the test. After an intended template
change, refresh them with `task render` (CFW_UPDATE_GOLDEN=1) and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cfw.backends.kind import Identity
from cfw.backends.registry import resolve
from cfw.core.assets import example_environments_dir
from cfw.core.render import ROOT_FILES
from cfw.orchestration.lifecycle import Lifecycle

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("CFW_UPDATE_GOLDEN") == "1"

# machine-specific values pinned so that a golden render is the same everywhere
GOLDEN_OVERRIDES: dict[str, list[str]] = {
    "local": ["sandbox_root=/var/tmp/cfw-sandboxes"],
    "gke": ["project=my-project"],
    "google-batch": ["project=example-project"],
    # auto asks AWS whether the account has the table; the golden render asks no one
    "tibanna": ["create_dynamodb_table=true"],
}


def golden_identity(kind: str, ttl: timedelta | None) -> Identity:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return Identity(
        name=kind,
        kind=kind,
        env_id=f"{kind}-0a1b2c",
        created_at=created,
        expires_at=created + ttl if ttl else None,
    )


def example_config(kind: str):
    """The example environment's config, as render_example resolves it."""
    project = example_environments_dir().parent
    return resolve(project, kind, overrides=GOLDEN_OVERRIDES.get(kind, []), environ={}).config


def render_example(kind: str, outdir: Path) -> Path:
    project = example_environments_dir().parent
    resolved = resolve(project, kind, overrides=GOLDEN_OVERRIDES.get(kind, []), environ={})
    lifecycle = Lifecycle(project, environ={})
    tf = lifecycle.terraform(resolved, outdir)
    lifecycle.render(resolved, golden_identity(kind, resolved.config.ttl), outdir, tf)
    return outdir


GUARD_HASH = "<base64 SHA-256 of the guard's zip: cfw.backends._aws.guard_zip.digest>"
GUARD_SHA256 = "<hex SHA-256 of the guard's zip: cfw.backends._google.guard_zip.digest>"
AZURE_SHA256 = "<hex SHA-256 of the guard's zip: cfw.backends.azure_batch.guard_zip.digest>"
AZURE_ZIP = re.compile(r"cfw_guard-[0-9a-f]{16}\.zip$")


def golden_text(path: Path) -> str:
    """A rendered file as its golden file holds it: the hash of the guard's zip, which
    changes with every edit of cfw's guard code, is a placeholder, and so is the name of
    Azure's, which is named by its content (the zips' own tests check them:
    tests/tibanna/test_guard_deploy.py, tests/google_batch/test_guard_deploy.py,
    tests/azure_batch/test_guard_function.py)."""
    text = path.read_text()
    if path.name == "terraform.tfvars.json" and '"guard_package"' in text:
        values = json.loads(text)
        package = values["guard_package"]
        if "source_code_hash" in package:  # AWS's
            package["source_code_hash"] = GUARD_HASH
        elif AZURE_ZIP.search(package.get("filename", "")):
            package["sha256"] = AZURE_SHA256
            package["filename"] = AZURE_ZIP.sub("cfw_guard-<sha256[:16]>.zip", package["filename"])
        elif "sha256" in package:  # Google's
            package["sha256"] = GUARD_SHA256
        text = json.dumps(values, indent=2, sort_keys=True) + "\n"
    return text


def golden_mismatches(rendered: Path, golden: Path) -> list[str]:
    """The root-module files whose render differs from (or is missing beside) the golden."""
    stale = []
    for name in ROOT_FILES:
        new, old = rendered / name, golden / name
        if new.exists() != old.exists() or (old.exists() and golden_text(new) != old.read_text()):
            stale.append(name)
    return stale

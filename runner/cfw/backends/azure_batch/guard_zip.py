"""The package of the guard's Azure Function (modules/azure-guard), built from cfw's own
files (cfw.core.guard_zip: deterministic, relative paths), in the v1 Python programming
model: host.json and one function folder, cfw_guard/, whose function.json is a timer
trigger on the app setting CFW_GUARD_SCHEDULE (an NCRONTAB the module derives from
guard.interval) and whose __init__.py runs one check (cfw.core.guard_entry.run).

Only what one check imports: the decision, its record and the shared entry
(cfw.core.guard_zip.CORE), the adapter (cfw.backends.azure_batch.guard) and the modules it
imports. requirements.txt is pinned here, not read from this machine's installed versions,
so the same cfw builds the same zip everywhere; the Functions build installs it at deploy
(SCM_DO_BUILD_DURING_DEPLOYMENT), and tests/azure_batch/test_guard_function.py checks the
pins against what cfw is tested with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cfw.core import guard_zip

ADAPTER = "cfw.backends.azure_batch.guard"
FUNCTION = "cfw_guard"  # the function's folder, and its name in the Function app
# what the adapter imports of cfw besides CORE and its own package's __init__ and guard.py
FILES = (
    "backends/base.py",
    "backends/azure_batch/client.py",
    "backends/azure_batch/cloud.py",
    "backends/azure_batch/status.py",
)
PINS = (
    "azure-batch==15.1.0",
    "azure-core==1.41.0",
    "azure-functions==1.24.0",
    "azure-identity==1.27.0",
    "azure-storage-blob==12.31.1",
)
HOST = {
    "version": "2.0",
    "extensionBundle": {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    },
    # one check at a time, cut off well before the next one is due
    "functionTimeout": "00:05:00",
    "logging": {"logLevel": {"default": "Information"}},
}
BINDING = {
    "scriptFile": "__init__.py",
    "bindings": [
        {
            "name": "timer",
            "type": "timerTrigger",
            "direction": "in",
            "schedule": "%CFW_GUARD_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ],
}
ENTRY = b'''"""cfw guard (Azure Function, timer trigger): one check of cfw.core.guard_entry
per call, with the adapter CFW_GUARD_ADAPTER names; what it did goes to the log and to the
guard's record beside the heartbeats. A check that raises fails the invocation, so it shows
in the Function's log; the next call of the schedule tries again."""

import json
import logging
import os

from cfw.core.guard_entry import run


def main(timer) -> None:
    result = run(os.environ, None)
    if getattr(timer, "past_due", False):
        result["notes"].append("this check was past due")
    logging.info("cfw guard: %s", json.dumps(result))
'''


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def entries() -> dict[str, bytes]:
    """The zip's root entries besides cfw/: the host, the function, the requirements."""
    return {
        "host.json": _json(HOST),
        f"{FUNCTION}/function.json": _json(BINDING),
        f"{FUNCTION}/__init__.py": ENTRY,
        "requirements.txt": "".join(f"{pin}\n" for pin in PINS).encode(),
    }


def package_files() -> list[str]:
    """cfw-relative paths of the cfw files the zip holds."""
    return sorted({*guard_zip.CORE, *FILES, *guard_zip.adapter_files(ADAPTER)})


def build_zip() -> bytes:
    return guard_zip.build(package_files(), entries())


def digest() -> str:
    """Hex SHA-256 of the zip."""
    return hashlib.sha256(build_zip()).hexdigest()


def filename() -> str:
    """The zip's name, by its content: the Function app redeploys its zip_deploy_file only
    when the path changes, so a changed guard gets a new name."""
    return f"cfw_guard-{digest()[:16]}.zip"


def write(outdir: Path) -> Path:
    """The zip in OUTDIR under filename(), written only when its bytes changed; older
    packages there are removed (the root module names only this one)."""
    data = build_zip()
    name = f"cfw_guard-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    for old in Path(outdir).glob("cfw_guard-*.zip") if Path(outdir).is_dir() else ():
        if old.name != name:
            old.unlink()
    return guard_zip.write_if_changed(data, Path(outdir) / name)

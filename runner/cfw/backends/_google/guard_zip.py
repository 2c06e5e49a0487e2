"""The source zip of the guard's Cloud Function (modules/gcp-guard), built from cfw's own
files (cfw.core.guard_zip: deterministic, relative paths).

Only what one check imports: the entry (cfw.backends._google.guard_function), the decision,
its record and the shared entry (cfw.core.guard_zip.CORE), and the kind's guard with what it
imports of cfw; at the zip's root a main.py that re-exports the entry (the Python runtime's
entry module) and a requirements.txt that Cloud Build installs. The requirements are pinned
here, not read from this machine's installed versions, so the same cfw builds the same zip
everywhere (and a shared state does not redeploy the function from another checkout);
tests/google_batch/test_guard_function.py checks the pins against what cfw is tested with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cfw.core import guard_zip

ENTRY_POINT = "guard"
FILENAME = "cfw_guard.zip"
GOOGLE = ("backends/_google/__init__.py", "backends/_google/guard_function.py")
MAIN = (
    b'"""cfw guard (Cloud Function): see cfw.backends._google.guard_function."""\n\n'
    b"from cfw.backends._google.guard_function import guard\n\n"
    b'__all__ = ["guard"]\n'
)
# the distributions the entry and each adapter import, as Cloud Build installs them
PINS = {
    "functions-framework": "functions-framework>=3.5,<4",
    "google-auth": "google-auth>=2.30,<3",
    "google-cloud-batch": "google-cloud-batch>=0.17,<1",
    "google-cloud-container": "google-cloud-container>=2.50,<3",
    "google-cloud-storage": "google-cloud-storage>=2.16,<4",
    "kubernetes": "kubernetes>=30,<38",
}

# per adapter: the other cfw files it imports, and the distributions it needs
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cfw.backends.google_batch.guard": (
        (
            "backends/base.py",
            "backends/google_batch/client.py",
            "backends/google_batch/status.py",
            "backends/google_batch/store.py",
        ),
        ("google-auth", "google-cloud-batch", "google-cloud-storage"),
    ),
    "cfw.backends.gke.guard": (
        (
            "backends/base.py",
            "backends/_kube/__init__.py",
            "backends/_kube/client.py",
            "backends/_kube/guard.py",
            "backends/_kube/manifest.py",
            "backends/_kube/rbac.py",
            "backends/_kube/status.py",
        ),
        ("google-auth", "google-cloud-container", "kubernetes"),
    ),
}


def requirements(adapter_module: str) -> bytes:
    names = sorted({"functions-framework", *NEEDS[adapter_module][1]})
    return "".join(f"{PINS[name]}\n" for name in names).encode()


def _package_files(adapter_module: str) -> list[str]:
    """cfw-relative paths of the files the zip holds, for the adapter "cfw.backends.x.guard"."""
    files, _ = NEEDS[adapter_module]
    return sorted({*guard_zip.CORE, *GOOGLE, *files, *guard_zip.adapter_files(adapter_module)})


def build_zip(adapter_module: str) -> bytes:
    extra = {"main.py": MAIN, "requirements.txt": requirements(adapter_module)}
    return guard_zip.build(_package_files(adapter_module), extra)


def digest(adapter_module: str) -> str:
    """Hex SHA-256 of the zip (modules/gcp-guard names the source object by it)."""
    return hashlib.sha256(build_zip(adapter_module)).hexdigest()


def write(adapter_module: str, outdir: Path) -> Path:
    """The zip in outdir/cfw_guard.zip, written only when its bytes changed."""
    return guard_zip.write_if_changed(build_zip(adapter_module), outdir / FILENAME)

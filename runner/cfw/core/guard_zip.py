"""Deterministic zips of cfw's own files, for the cloud guards' functions (the AWS Lambda,
the Google Cloud Function, the Azure Function).

Same files, same bytes: sorted entries, fixed times and permissions, no bytecode, relative
paths (cfw/...), so an unchanged guard is not redeployed. Each cloud says which cfw files
one check imports (`package_files`) and adds its own entry files (`extra`: a main.py, a
requirements.txt, a function.json) at the zip's root.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import cfw

# What one check imports on every cloud: the decision, its record and the entry point.
CORE = (
    "__init__.py",
    "core/__init__.py",
    "core/errors.py",
    "core/guard.py",
    "core/heartbeat.py",
    "core/guard_check.py",
    "core/guard_entry.py",
    "backends/__init__.py",
    "backends/sdk.py",
)
_EPOCH = (1980, 1, 1, 0, 0, 0)


def adapter_files(adapter_module: str) -> set[str]:
    """The kind's package __init__ and its guard module, for "cfw.backends.KIND.MODULE"."""
    parts = adapter_module.split(".")
    if parts[:2] != ["cfw", "backends"] or len(parts) != 4:
        raise ValueError(f"{adapter_module!r} is not a kind's guard module")
    return {f"backends/{parts[2]}/__init__.py", f"backends/{parts[2]}/{parts[3]}.py"}


def build(files: Iterable[str], extra: Mapping[str, bytes] | None = None) -> bytes:
    """The zip of cfw's FILES (cfw-relative) under cfw/, and EXTRA at the root."""
    root = Path(cfw.__file__).parent
    entries = {f"cfw/{rel}": (root / rel).read_bytes() for rel in files}
    for name, data in (extra or {}).items():
        if name.startswith("cfw/") or ".." in name or name.startswith("/"):
            raise ValueError(f"{name!r} is not a root entry of the zip")
        entries[name] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the building machine
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def write_if_changed(data: bytes, path: Path) -> Path:
    """DATA at PATH, written (atomically) only when its bytes changed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path

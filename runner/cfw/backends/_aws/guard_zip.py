"""The zip of the guard's Lambda (modules/aws-guard), built from cfw's own files.

Only what one check imports: the handler (cfw.backends._aws.guard_lambda), the decision
and its record (cfw.core.guard, heartbeat, guard_check), the S3 store and the kind's adapter
module, with the package __init__ files on their way (and what those import: sdk.py and
core/errors.py). boto3 is the Lambda runtime's. Deterministic: the same files give the same
bytes (sorted entries, fixed times and permissions, no bytecode), so an unchanged guard is
not redeployed; entries are relative paths (cfw/...).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from pathlib import Path

import cfw

HANDLER = "cfw.backends._aws.guard_lambda.handler"
FILENAME = "cfw_guard.zip"
COMMON = (
    "__init__.py",
    "core/__init__.py",
    "core/errors.py",
    "core/guard.py",
    "core/heartbeat.py",
    "core/guard_check.py",
    "backends/__init__.py",
    "backends/sdk.py",
    "backends/_aws/__init__.py",
    "backends/_aws/store.py",
    "backends/_aws/guard_lambda.py",
)
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _package_files(adapter_module: str) -> list[str]:
    """cfw-relative paths of the files the zip holds, for the adapter "cfw.backends.x.guard"."""
    parts = adapter_module.split(".")
    if parts[:2] != ["cfw", "backends"] or len(parts) != 4:
        raise ValueError(f"{adapter_module!r} is not a kind's guard module")
    kind = parts[2]
    return sorted({*COMMON, f"backends/{kind}/__init__.py", f"backends/{kind}/{parts[3]}.py"})


def build_zip(adapter_module: str) -> bytes:
    root = Path(cfw.__file__).parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for rel in _package_files(adapter_module):
            info = zipfile.ZipInfo(f"cfw/{rel}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the building machine
            archive.writestr(info, (root / rel).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def digest(adapter_module: str) -> str:
    """base64 SHA-256 of the zip (Terraform's source_code_hash)."""
    return base64.b64encode(hashlib.sha256(build_zip(adapter_module)).digest()).decode()


def write(adapter_module: str, outdir: Path) -> Path:
    """The zip in outdir/cfw_guard.zip, written only when its bytes changed."""
    outdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = build_zip(adapter_module)
    path = outdir / FILENAME
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path

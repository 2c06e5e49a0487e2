"""The zip of the guard's Lambda (modules/aws-guard), built from cfw's own files
(cfw.core.guard_zip: deterministic, relative paths).

Only what one check imports: the handler (cfw.backends._aws.guard_lambda), the decision,
its record and the shared entry (cfw.core.guard_zip.CORE), the S3 store and the kind's
adapter module. boto3 is the Lambda runtime's.
"""

from __future__ import annotations

from pathlib import Path

from cfw.core import guard_zip

HANDLER = "cfw.backends._aws.guard_lambda.handler"
FILENAME = "cfw_guard.zip"
AWS = ("backends/_aws/__init__.py", "backends/_aws/store.py", "backends/_aws/guard_lambda.py")


def _package_files(adapter_module: str) -> list[str]:
    """cfw-relative paths of the files the zip holds, for the adapter "cfw.backends.x.guard"."""
    return sorted({*guard_zip.CORE, *AWS, *guard_zip.adapter_files(adapter_module)})


def build_zip(adapter_module: str) -> bytes:
    return guard_zip.build(_package_files(adapter_module))


def digest(adapter_module: str) -> str:
    """base64 SHA-256 of the zip (Terraform's source_code_hash)."""
    return guard_zip.sha256_b64(build_zip(adapter_module))


def write(adapter_module: str, outdir: Path) -> Path:
    """The zip in outdir/cfw_guard.zip, written only when its bytes changed."""
    return guard_zip.write_if_changed(build_zip(adapter_module), outdir / FILENAME)

"""The three Tibanna Lambdas' zips, built in Python from the installed `tibanna` package.

What `tibanna deploy_unicorn` uploads (through python-lambda): the function's module as
``service.py`` (handler ``service.handler``) beside the `tibanna` package and the packages
of ``tibanna/lambdas/requirements.txt``. boto3 and botocore are left out: the Lambda Python
runtime provides them.

The zip is deterministic: entries sorted, fixed timestamps and permissions, no bytecode,
so the same installed packages always give the same bytes and the same hash (Terraform's
``source_code_hash``), and an unchanged unicorn is not redeployed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cfw.core.errors import missing_sdk

FUNCTIONS = ("run_task_awsem", "check_task_awsem", "update_cost_awsem")
# top-level packages beside `tibanna` in each zip (tibanna/lambdas/requirements.txt, less
# what the Lambda runtime has)
PACKAGES = ("tibanna", "Benchmark", "tomlkit")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class LambdaPackage:
    function: str
    path: Path
    sha256_b64: str  # what Terraform's source_code_hash expects


def tibanna_version() -> str:
    try:
        return importlib.metadata.version("tibanna")
    except importlib.metadata.PackageNotFoundError as exc:
        raise missing_sdk("tibanna", "aws") from exc


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise missing_sdk(name if name != "Benchmark" else "Benchmark-4dn", "aws")
    return Path(next(iter(spec.submodule_search_locations)))


def _files(root: Path) -> list[tuple[str, Path]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for filename in filenames:
            if filename.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(dirpath) / filename
            out.append((f"{root.name}/{path.relative_to(root).as_posix()}", path))
    return out


def _entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # unix, whatever the building machine
    archive.writestr(info, data, compresslevel=9)


@cache
def build_zip(function: str) -> bytes:
    """The zip of one function, as bytes."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown Tibanna function {function!r}")
    tibanna_dir = _package_dir("tibanna")
    entries: dict[str, bytes] = {
        "service.py": (tibanna_dir / "lambdas" / f"{function}.py").read_bytes(),
    }
    for package in PACKAGES:
        for name, path in _files(_package_dir(package)):
            entries[name] = path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            _entry(archive, name, entries[name])
    return buffer.getvalue()


def digests() -> dict[str, str]:
    """base64 SHA-256 of each function's zip (Terraform's source_code_hash), built in memory."""
    return {
        function: base64.b64encode(hashlib.sha256(build_zip(function)).digest()).decode()
        for function in FUNCTIONS
    }


def build_all(outdir: Path) -> dict[str, LambdaPackage]:
    """Write the three zips into ``outdir`` (only when their bytes changed)."""
    outdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    packages = {}
    for function in FUNCTIONS:
        data = build_zip(function)
        path = outdir / f"{function}.zip"
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        packages[function] = LambdaPackage(function, path.resolve(), digest)
    return packages

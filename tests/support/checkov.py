"""checkov for the module tests, from a virtualenv of its own.

checkov pins versions (packaging, dpath) that conflict with Snakemake's, so it cannot live
in the project's virtualenv: the tests make a separate one (once; it is kept in pytest's
cache directory) unless CFW_CHECKOV names a checkov executable. A checkov that cannot be
installed fails the tests; it does not skip them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SPEC = "checkov>=3.2,<4"


def checkov_executable(cache_dir: Path) -> str:
    given = os.environ.get("CFW_CHECKOV")
    if given:
        return given
    venv = cache_dir / "checkov-venv"
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        steps = ([sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "--quiet", SPEC])
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=1200, check=False)
            if proc.returncode != 0:
                pytest.fail(f"could not install {SPEC} for the module tests: "
                            f"{' '.join(step)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return str(exe)


def run_checkov(executable: str, directory: Path) -> dict[str, Any]:
    """checkov's JSON report of a Terraform directory (no network: --skip-download)."""
    proc = subprocess.run(
        [executable, "-d", str(directory), "--framework", "terraform", "--skip-download",
         "-o", "json"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return report[0] if isinstance(report, list) else report

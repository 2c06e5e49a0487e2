"""checkov in a virtualenv of its own.

checkov pins packaging and dpath below what Snakemake needs, so it cannot share the test
virtualenv. The first call makes one (``$CFW_CHECKOV_VENV``, default: a directory in the
user's cache) and installs the pinned version there; later calls reuse it. A failed install
fails the tests that need it: a missing tool is never a skip.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CHECKOV_VERSION = "3.3.30"


def checkov_venv() -> Path:
    default = Path.home() / ".cache" / "cfw-tests" / f"checkov-{CHECKOV_VERSION}"
    venv = Path(os.environ.get("CFW_CHECKOV_VENV") or default)
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = venv / ".installed"
        if not marker.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            proc = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"could not install checkov {CHECKOV_VERSION}:\n"
                    + proc.stdout[-2000:]
                    + proc.stderr[-2000:]
                )
            marker.write_text(CHECKOV_VERSION + "\n")
    return venv


def checkov_executable() -> str:
    """The checkov command: $CFW_CHECKOV, else the one in the shared virtualenv above."""
    given = os.environ.get("CFW_CHECKOV")
    if given:
        return given
    return str(checkov_venv() / "bin" / "checkov")


def run_checkov(executable: str, directory: Path) -> dict[str, Any]:
    """checkov's JSON report of a Terraform directory (no network: --skip-download)."""
    proc = subprocess.run(
        [
            executable,
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"checkov gave no JSON report (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        ) from None
    report = report[0] if isinstance(report, list) else report
    if "summary" not in report:  # nothing to check: checkov prints only its summary
        report = {"summary": report, "results": {"failed_checks": [], "skipped_checks": []}}
    return report


@functools.cache
def module_report(module: Path) -> dict[str, Any]:
    """checkov's report of a module, run once per test session (tests/core/test_modules.py
    checks every module's; a kind's test_module.py asks more of its own)."""
    return run_checkov(checkov_executable(), module)


def unreasoned(report: dict[str, Any], module: Path, min_reason: int = 20) -> list[str]:
    """What a module's checkov report leaves unjustified: every failed check, a skip whose
    reason is shorter than ``min_reason`` characters, and a skip that is not an inline
    ``#checkov:skip=ID:reason`` inside the resource it skips. Empty: clean."""
    results = report["results"]
    problems = [f"failed {c['check_id']} {c['resource']}" for c in results["failed_checks"]]
    if report["summary"].get("parsing_errors"):
        problems.append(f"{report['summary']['parsing_errors']} files checkov could not parse")
    for check in results["skipped_checks"]:
        what = f"{check['check_id']} {check['resource']}"
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        if len(reason) < min_reason:
            problems.append(f"skipped without a reason: {what}")
        first, last = check["file_line_range"]
        lines = (module / check["file_path"].lstrip("/")).read_text().splitlines()[first - 1 : last]
        pattern = re.compile(rf"#\s*checkov:skip={re.escape(check['check_id'])}:")
        if not any(pattern.search(line) for line in lines):
            problems.append(f"skipped from outside the resource: {what}")
    return problems

"""checkov in a virtualenv of its own.

checkov pins packaging and dpath below what Snakemake needs, so it cannot share the test
virtualenv. The first call makes one (``$CFW_CHECKOV_VENV``, default: a directory in the
user's cache) and installs the pinned version there; later calls reuse it. A failed install
fails the tests that need it: a missing tool is never a skip.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

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
                capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"could not install checkov {CHECKOV_VERSION}:\n"
                                   + proc.stdout[-2000:] + proc.stderr[-2000:])
            marker.write_text(CHECKOV_VERSION + "\n")
    return venv

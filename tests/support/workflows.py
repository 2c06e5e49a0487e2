"""Running workflows the plain way, to compare with cfw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def plain_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )

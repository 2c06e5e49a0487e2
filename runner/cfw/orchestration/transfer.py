"""Files between this machine and an environment's remote storage: a run's input files up
before it, its requested targets down after it (through cfw.core.staging)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cfw.backends.base import StorageSpec
from cfw.core.errors import WorkFailed
from cfw.core.report import Reporter
from cfw.core.state import CFW_DIR


class Transfer:
    def __init__(self, project: Path, reporter: Reporter):
        self.project = project
        self.reporter = reporter

    def relative(self, query: str) -> str | None:
        try:
            return str(Path(query).resolve().relative_to(self.project))
        except ValueError:
            return None

    def upload_inputs(self, inputs: list[str], storage: StorageSpec, env: dict[str, str]) -> None:
        # snakemake-storage-plugin-s3 deletes a bucket that a removal leaves empty (say,
        # the source archive's cleanup): a marker object below the prefix keeps it
        marker = self.project / CFW_DIR / "keep-marker.txt"
        marker.parent.mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            marker.write_text("kept by cfw: a storage plugin deletes buckets that become empty\n")
        pairs = [f"{marker}={storage.query('.cfw-keep')}"]
        for query in inputs:
            rel = self.relative(query)
            if rel and (self.project / rel).is_file():
                pairs.append(f"{self.project / rel}={storage.query(rel)}")
        if len(pairs) > 1:
            self.reporter.info(f"staging {len(pairs) - 1} input file(s) to {storage.prefix}")
        self._transfer("put", pairs, storage, env)

    def download(self, targets: list[str], storage: StorageSpec, env: dict[str, str]) -> None:
        pairs = [
            f"{storage.query(rel)}={self.project / rel}"
            for rel in filter(None, map(self.relative, targets))
        ]
        if pairs:
            self.reporter.info(f"downloading {len(pairs)} target(s) from {storage.prefix}")
            self._transfer("get", pairs, storage, env)

    def _transfer(
        self, mode: str, pairs: list[str], storage: StorageSpec, env: dict[str, str]
    ) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "cfw.core.staging", mode, *pairs, "--", *storage.cli_args()],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        if proc.returncode != 0:
            print("\n".join(proc.stderr.strip().splitlines()[-10:]), file=sys.stderr)
            verb = "upload the inputs to" if mode == "put" else "download the targets from"
            raise WorkFailed(f"could not {verb} {storage.prefix}", "see the messages above")

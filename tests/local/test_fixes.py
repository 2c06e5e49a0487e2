"""Rough edges a first run hits: Snakemake's temp(expand()) workflow on local, and
`cfw logs ... | head`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import WORKFLOWS, copy_workflow, run_cfw
from support.workflows import plain_snakemake


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_temp_expand_runs_as_with_plain_snakemake(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "temp_expand", tmp_path / "cfw")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-3000:]
    assert "interrupted" not in result.output
    plain = copy_workflow(WORKFLOWS / "temp_expand", tmp_path / "plain")
    assert plain_snakemake(plain).returncode == 0
    for where in (workdir, plain):
        assert (where / "final.txt").read_text().strip().endswith("a.txt")
        # all three were temp files: removed once nothing needed them
        assert not [n for n in ("a.txt", "b.txt", "c.txt") if (where / n).exists()], where
    (run,) = (workdir / ".cfw" / "local" / "runs").glob("*/run.json")
    assert json.loads(run.read_text())["outcome"] == "success"


def test_logs_into_a_closed_pipe_exits_0(tmp_path: Path):
    run_dir = tmp_path / ".cfw" / "local" / "runs" / "12020000abcd"
    (run_dir / "logs").mkdir(parents=True)
    log = run_dir / "logs" / "job.log"
    log.write_text("".join(f"line {i} of a long log\n" for i in range(200_000)))
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": "12020000abcd", "env": "local", "pid": 1, "started": "x"})
    )
    (run_dir / "jobs.jsonl").write_text(
        json.dumps({"event": "failed", "jobid": 3, "external_id": "e3", "log": str(log)}) + "\n"
    )
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m cfw logs local 3 | head -2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "line 0 of a long log\nline 1 of a long log\n"
    assert "Broken pipe" not in proc.stderr and "error" not in proc.stderr


def test_storage_plugin_a_job_installs_is_pinned_even_when_not_installed_here(monkeypatch):
    import importlib.metadata as metadata

    from cfw.executor import prefix

    # the known versions are the ones the tests run with
    for package, known in prefix.KNOWN_COMPATIBLE.items():
        assert metadata.version(package) == known, f"update KNOWN_COMPATIBLE for {package}"
        assert prefix.pinned_plugin(package) == f"{package}=={known}"

    def not_here(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_here)
    assert prefix.pinned_plugin("snakemake-storage-plugin-s3").endswith("==0.3.6")
    assert (
        prefix.pinned_plugin("snakemake-storage-plugin-other") == "snakemake-storage-plugin-other"
    )
    prefix.storage_plugin_install_command.cache_clear()
    command = prefix.storage_plugin_install_command("gcs")
    assert command.endswith(
        "--target .snakemake/pip-deployments snakemake-storage-plugin-gcs==1.1.4"
    )


@pytest.mark.parametrize("env", ["local", "gke", "azure-batch"])
def test_explain_leaves_no_empty_directories(env: str, tmp_path: Path):
    from conftest import EXAMPLES

    workdir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")
    result = run_cfw(["run", "--explain", "--env", env], cwd=workdir)
    assert result.code == 0, result.output[-2000:]
    assert len(result.stdout.splitlines()) == 9  # the jobs, explained
    assert not (workdir / ".cfw").exists(), sorted(map(str, (workdir / ".cfw").rglob("*")))

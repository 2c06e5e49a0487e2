"""End to end on the local backend: real Snakemake, real sandboxes, real storage.

Every workflow's outputs must equal what plain `snakemake --cores 2` produces for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, WORKFLOWS, copy_workflow, run_cfw
from support.workflows import plain_snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

IGNORED = {".snakemake", ".cfw", "environments"}


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root (outside cfw's and Snakemake's own directories) and its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in IGNORED or not path.is_file():
            continue
        files[str(rel)] = path.read_bytes()
    return files


def assert_same_outputs(cfw_dir: Path, plain_dir: Path) -> None:
    ours, theirs = tree(cfw_dir), tree(plain_dir)
    assert sorted(ours) == sorted(theirs), (
        f"files differ: only cfw {sorted(set(ours) - set(theirs))}, "
        f"only plain {sorted(set(theirs) - set(ours))}"
    )
    for name in ours:
        assert ours[name] == theirs[name], f"{name} differs"


def job_events(workdir: Path, env: str = "local") -> list[dict]:
    events = []
    for path in (workdir / ".cfw" / env / "runs").glob("*/jobs.jsonl"):
        events += [json.loads(line) for line in path.read_text().splitlines()]
    return events


def sandboxes(base: Path) -> list[str]:
    """Job sandbox directories left below the sandbox base (<user>/<env id>/<run>/<job>)."""
    return [p.name for p in base.glob("cfw-*/*/*/*") if p.is_dir()]


def run_both(source: Path, tmp_path: Path, *args: str, cfw_args: tuple[str, ...] = ()):
    cfw_dir = copy_workflow(source, tmp_path / "cfw")
    plain_dir = copy_workflow(source, tmp_path / "plain")
    result = run_cfw(["run", *cfw_args, *args], cwd=cfw_dir)
    plain = plain_snakemake(plain_dir, *args)
    return cfw_dir, plain_dir, result, plain


@pytest.mark.parametrize(
    ("workflow", "args"),
    [
        (EXAMPLES / "quickstart", ()),
        (WORKFLOWS / "wildcards", ()),
        (WORKFLOWS / "checkpoint", ()),
        (WORKFLOWS / "temp", ()),
        (WORKFLOWS / "retry", ("--retries", "1")),
        (
            WORKFLOWS / "resources",
            (
                "--default-resources",
                "mem_mb=300",
                "runtime=7",
                "--set-resources",
                "heavy:mem_mb=500",
                "heavy:runtime=5",
            ),
        ),
    ],
    ids=["quickstart", "wildcards", "checkpoint", "temp", "retry", "resources"],
)
def test_outputs_equal_plain_snakemake(
    workflow: Path, args: tuple[str, ...], tmp_path: Path, sandbox_base: Path
):
    cfw_dir, plain_dir, result, plain = run_both(workflow, tmp_path, *args)
    assert plain.returncode == 0, plain.stderr
    assert result.code == 0, result.output[-3000:]
    assert " done in " in result.stderr  # a line per finished job
    assert_same_outputs(cfw_dir, plain_dir)
    # sandboxes are gone, but those of failed attempts (kept for debugging); no source
    # archive is left anywhere
    failed = {r["external_id"] for r in job_events(cfw_dir) if r["event"] == "failed"}
    assert set(sandboxes(sandbox_base)) == failed
    assert not list(cfw_dir.rglob("snakemake-workflow-sources.*"))


def test_quickstart_results(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-3000:]
    report = (workdir / "results" / "report.tsv").read_text().splitlines()
    assert report[0] == "sample\tgc"
    assert [line.split("\t")[0] for line in report[1:]] == ["alpha", "beta", "gamma", "delta"]
    assert "environment local (kind local; no environment is up)" in result.stderr


def test_temp_files_are_removed(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "temp", tmp_path / "temp")
    assert run_cfw(["run"], cwd=workdir).code == 0
    assert (workdir / "results" / "final.txt").read_text() == "one\ntwo\nthree\n"
    assert not list((workdir / "results").rglob("tmp/*.txt"))


def test_retry_needed_and_used(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "retry", tmp_path / "once")
    failed = run_cfw(["run"], cwd=workdir)
    assert failed.code == 1
    retried = run_cfw(["run", "--retries", "1"], cwd=workdir)
    assert retried.code == 0, retried.output[-2000:]
    assert (workdir / "results" / "flaky.txt").read_text() == "succeeded on a retry\n"


def test_failed_job_log_is_saved_and_path_printed(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "fails", tmp_path / "fails")
    result = run_cfw(["run", "--keep-going"], cwd=workdir)
    assert result.code == 1
    assert "error" in result.stderr and "Traceback" not in result.stderr
    assert (workdir / "results" / "fine.txt").exists()
    assert not (workdir / "results" / "broken.txt").exists()
    logs = list((workdir / ".cfw" / "local" / "runs").glob("*/logs/*broken*.log"))
    assert len(logs) == 1
    assert "MARKER-broken-rule-stderr" in logs[0].read_text()
    assert str(logs[0]) in result.output  # the path is printed
    assert oct(logs[0].stat().st_mode & 0o777) == "0o600"
    # and `cfw logs` finds it by the job id Snakemake printed
    records = [
        json.loads(line) for line in (logs[0].parent.parent / "jobs.jsonl").read_text().splitlines()
    ]
    failed = next(r for r in records if r["event"] == "failed")
    shown = run_cfw(["logs", "local", str(failed["jobid"])], cwd=workdir)
    assert shown.code == 0 and "MARKER-broken-rule-stderr" in shown.stdout
    assert f"job {failed['jobid']} (broken) of run " in shown.stderr
    unknown = run_cfw(["logs", "local", "999"], cwd=workdir)
    assert unknown.code == 2 and "no job '999'" in unknown.stderr


def test_resources_reach_the_submission(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "resources", tmp_path / "res")
    result = run_cfw(
        [
            "run",
            "--explain",
            "--default-resources",
            "mem_mb=300",
            "--set-resources",
            "heavy:mem_mb=500",
            "heavy:runtime=5",
        ],
        cwd=workdir,
    )
    assert result.code == 0, result.output[-2000:]
    jobs = {j["rule"]: j for j in map(json.loads, result.stdout.splitlines())}
    assert jobs["light"]["submission"]["limits"]["mem_mb"] == 300
    assert jobs["heavy"]["submission"]["limits"]["mem_mb"] == 500
    assert jobs["heavy"]["submission"]["limits"]["runtime_s"] == 300


def test_job_runs_in_a_sandbox_that_cannot_see_the_workflow(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "isolation", tmp_path / "iso")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-2000:]
    lines = (workdir / "results" / "where.txt").read_text().splitlines()
    cwd = Path(lines[0])
    assert sandbox_base in cwd.parents, cwd  # a sandbox below the sandbox root
    assert workdir not in cwd.parents and cwd != workdir
    assert lines[1] == "declared"  # declared input retrieved through the storage
    assert "undeclared-visible" not in lines  # nothing else of the workflow is there
    assert "cpus 1" in lines  # threads: 1 pinned to one CPU
    assert f"HOME={cwd}" in lines  # the environment is the sandbox's, not the user's


def test_memory_limit_is_enforced(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "memory", tmp_path / "mem")
    result = run_cfw(["run"], cwd=workdir, timeout=120)
    assert result.code == 1
    assert "out of memory" in result.output and "mem_mb=50" in result.output


def test_shell_launcher_gives_the_same_outputs(tmp_path: Path, sandbox_base: Path):
    """Through bash and fresh interpreters, as on a cloud node. The checkpoint workflow:
    `aggregate` globs the checkpoint's directory in its own Snakemake, so it succeeds only
    if the inlined staging command put that directory in the job's sandbox."""
    workdir = copy_workflow(WORKFLOWS / "checkpoint", tmp_path / "shell")
    (workdir / "environments").mkdir()
    (workdir / "environments" / "local.yaml").write_text("kind: local\nlauncher: shell\n")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-3000:]
    plain_dir = copy_workflow(WORKFLOWS / "checkpoint", tmp_path / "plain")
    assert plain_snakemake(plain_dir).returncode == 0
    assert_same_outputs(workdir, plain_dir)


def test_snakemake_executor_flag_works_directly(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "wildcards", tmp_path / "direct")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--executor",
            "cfw",
            "--cfw-env",
            "local",
            "--default-storage-provider",
            "cfw",
            "--default-storage-prefix",
            str(workdir),
            "--jobs",
            "2",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (workdir / "results" / "s3" / "merged.txt").exists()
    assert "running on environment 'local'" in proc.stderr

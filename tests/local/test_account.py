"""What `cfw run` prints on a non-terminal: a short account of the run (a line per job, a
failed job's last lines, a summary table), with Snakemake's own output in the run's
records; Ctrl-C reported as cancellations with the right counts."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfw.orchestration.account import excerpt
from conftest import EXAMPLES, WORKFLOWS, copy_workflow, run_cfw

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def run_dirs(workdir: Path) -> list[Path]:
    return sorted((workdir / ".cfw" / "local" / "runs").iterdir())


def test_quickstart_account_is_short_and_says_what_happened(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-3000:]
    lines = result.stderr.strip().splitlines()
    # start (2), one line per job (9), the counts, a table of 3 rules plus its header, cost
    assert 15 <= len(lines) <= 20, result.stderr
    assert lines[0] == "cfw: environment local (kind local; no environment is up)"
    (run_dir,) = run_dirs(workdir)
    assert lines[1] == (
        f"cfw: run {run_dir.name}: snakemake (default target); its output goes to "
        f".cfw/local/runs/{run_dir.name}/snakemake.log"
    )
    done = [line for line in lines if re.match(r"cfw: \[\d/9\] \w+ job \d+ done in ", line)]
    assert len(done) == 9 and done[-1].startswith("cfw: [9/9] report job 1 done in ")
    assert f"cfw: run {run_dir.name}: 9 jobs done, 0 failed" in lines
    table = lines[lines.index(f"cfw: run {run_dir.name}: 9 jobs done, 0 failed") + 1 :]
    assert table[0].split() == ["rule", "jobs", "done", "failed", "retries", "wall", "time"]
    rows = {row.split()[0]: row.split()[1:5] for row in table[1:4]}
    assert rows == {
        "count_bases": ["4", "4", "0", "0"],
        "gc_content": ["4", "4", "0", "0"],
        "report": ["1", "1", "0", "0"],
    }
    # none of Snakemake's own output (banner, DAG table, job blocks), no duplicate sentence
    for noise in ("SNAKEMAKE", "Job stats", "rule count_bases:", "cfw: jobs ", "running on"):
        assert noise not in result.stderr
    # ... which is kept, whole, in the run's records
    log = (run_dir / "snakemake.log").read_text()
    assert "Job stats:" in log and "10 of 10 steps (100%) done" in log
    assert oct((run_dir / "snakemake.log").stat().st_mode & 0o777) == "0o600"
    # `cfw status` shows local (which needs no `up`) and the run, in one table each
    for args in (["status"], ["status", "local"]):
        status = run_cfw(args, cwd=workdir)
        assert status.code == 0, status.output
        assert "no environments here" not in status.output and "is not up" not in status.output
        assert re.search(r"│ local +│ local +│ ready ", status.stdout), status.stdout
        assert re.search(
            rf"│ local +│ {run_dir.name} │ .* │ success +│ +9 │ +0 │ +0 │", status.stdout
        )
    (shown,) = json.loads(run_cfw(["status", "--json"], cwd=workdir).stdout)
    assert (shown["name"], shown["kind"], shown["state"]) == ("local", "local", "ready")
    assert [(r["run_id"], r["state"], r["done"]) for r in shown["runs"]] == [
        (run_dir.name, "success", 9)
    ]


@pytest.mark.parametrize("how", ["--verbose", "CFW_LOG"])
def test_verbose_shows_snakemake_live(how: str, tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "wildcards", tmp_path / "verbose")
    args, env = (
        (["run", "--verbose"], None) if how == "--verbose" else (["run"], {"CFW_LOG": "snakemake"})
    )
    result = run_cfw(args, cwd=workdir, env=env)
    assert result.code == 0, result.output[-3000:]
    assert "Job stats:" in result.stderr and "cfw: jobs " in result.stderr
    (run_dir,) = run_dirs(workdir)
    assert "Job stats:" in (run_dir / "snakemake.log").read_text()
    assert "jobs done, 0 failed" in result.stderr  # the summary still ends it


def test_failed_job_shows_its_error_lines_and_log(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "fails", tmp_path / "fails")
    result = run_cfw(["run", "--keep-going"], cwd=workdir)
    assert result.code == 1
    lines = result.stderr.splitlines()
    (failure,) = [i for i, line in enumerate(lines) if "broken job" in line and "failed:" in line]
    (log,) = run_dirs(workdir)[0].glob("logs/*broken*.log")
    assert lines[failure].endswith(
        f"failed: exit code 1; sandbox kept at {_kept(lines[failure])}; log saved to {log}"
    )
    below = lines[failure + 1 : failure + 25]
    assert "    | MARKER-broken-rule-stderr: cannot open reference.fa" in below
    assert "SNAKEMAKE" not in result.stderr  # the job's Snakemake banner is left out
    assert "1 jobs done, 1 failed" in result.stderr


def _kept(line: str) -> str:
    return line.split("sandbox kept at ")[1].split(";")[0]


def test_literal_output_path_is_diagnosed(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "literal_output", tmp_path / "literal")
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 1
    hint = [line for line in result.stderr.splitlines() if "wrote other.txt" in line]
    assert len(hint) == 1, result.stderr
    assert "rule literal wrote other.txt in its working directory" in hint[0]
    assert "write to {output}" in hint[0]
    assert "MissingOutputException" in result.stderr  # Snakemake's own line, under it
    # the same hint is in the job's record, for `cfw logs` and `cfw status`
    records = [
        json.loads(x) for x in (run_dirs(workdir)[0] / "jobs.jsonl").read_text().splitlines()
    ]
    (failed,) = [r for r in records if r["event"] == "failed"]
    assert "write to {output}" in failed["hint"]


def test_ctrl_c_reports_cancelled_jobs_not_errors(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "interrupt", tmp_path / "int")
    seconds = str(random.randint(1000, 9999))
    env = {k: v for k, v in os.environ.items() if k != "CFW_DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfw", "run", "--jobs", "3", "--config", f"seconds={seconds}"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            outs = list((workdir / ".cfw" / "local" / "runs").glob("*/jobs/*slow*.out"))
            if len(outs) == 2 and all("started" in p.read_text() for p in outs):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the slow jobs never started")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Error in rule" not in stderr and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert (
        sum(" slow job " in x and x.split(" slow job ")[1].split()[1] == "cancelled" for x in lines)
        == 2
    ), stderr
    (run_dir,) = run_dirs(workdir)
    assert f"cfw: run {run_dir.name}: 1 jobs done, 0 failed, 2 cancelled; records in " in stderr
    assert lines[-1] == "error: the run was interrupted; its jobs were cancelled"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["outcome"] == "interrupted" and run["done"] == 1 and run["failed"] == 0
    # the cancelled jobs' logs keep what they printed; their sandboxes are gone
    logs = sorted(run_dir.glob("logs/*slow*.log"))
    assert len(logs) == 2
    assert all(re.search(r"MARKER-slow-\d-started", p.read_text()) for p in logs)
    assert list(sandbox_base.glob("cfw-*/*/*/*")) == []
    (shown,) = json.loads(run_cfw(["status", "--json"], cwd=workdir).stdout)
    assert shown["runs"][0]["state"] == "interrupted"
    assert (shown["runs"][0]["done"], shown["runs"][0]["cancelled"]) == (1, 2)


def test_excerpt_puts_error_lines_first():
    text = "\n".join(
        ["setup"] * 5 + ["ERROR: fail to locate the index files"] + [f"line {i}" for i in range(40)]
    )
    lines = excerpt(text, 20)
    assert lines[0] == "ERROR: fail to locate the index files" and lines[1] == "..."
    assert lines[-1] == "line 39" and len(lines) == 20
    assert excerpt("\n\none\n\n\ntwo\n\n") == ["one", "", "two"]


def test_the_executors_own_lines_reach_the_account(tmp_path: Path):
    """Snakemake's output is in snakemake.log; the executor's and backends' cfw: lines
    (a logging prefix before them too) are forwarded, its progress lines are not, nor
    Snakemake's echo of a job error's message."""
    import io

    from cfw.core.report import Reporter
    from cfw.orchestration.account import Account

    (tmp_path / "snakemake.log").write_text(
        "Building DAG of jobs...\n"
        "WARNING:cfw.backends.tes.backend:cfw: environment variables are not secret on TES\n"
        "cfw: jobs 1 done, 0 running, 0 failed\n"
        "    message: cfw: job x failed: exit code 1\n"
        "cfw: rule a: TES jobs run without preemptible (kind tes does not honour it)\n"
        "cfw: the run's estimated job cost, $1.20, passed its budget of $1.00\n"
        "Nothing to be done (all requested files are present and up to date).\n"
        "cfw: half a line"
    )
    shown = io.StringIO()
    Account(Reporter(shown), tmp_path, "r1").poll()
    assert shown.getvalue().splitlines() == [
        "cfw: environment variables are not secret on TES",
        "cfw: rule a: TES jobs run without preemptible (kind tes does not honour it)",
        "cfw: warning: the run's estimated job cost, $1.20, passed its budget of $1.00",
        "cfw: Nothing to be done (all requested files are present and up to date).",
    ]

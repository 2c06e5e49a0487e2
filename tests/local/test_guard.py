"""Run heartbeats and `cfw cancel` / `cfw guard --once` on the local kind, with real
Snakemake: a run writes its heartbeat before its first job and removes it when it ends; a
runner that is SIGKILLed leaves its job processes, and `cfw cancel local` ends them."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import WORKFLOWS, copy_workflow, run_cfw

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def heartbeats(workdir: Path) -> list[Path]:
    return sorted((workdir / ".cfw/local/guard/.cfw/runs").glob("*.json"))


def sleepers(seconds: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, text=True)
    return out.stdout.split()


def status_of(workdir: Path) -> dict:
    result = run_cfw(["status", "local", "--json"], cwd=workdir)
    assert result.code == 0, result.output
    [env] = json.loads(result.stdout)
    return env


def start_slow_run(workdir: Path, seconds: str) -> subprocess.Popen:
    env = {**os.environ}
    env.pop("CFW_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cfw", "run", "--config", f"seconds={seconds}"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_job(workdir: Path, seconds: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        beats = heartbeats(workdir)
        if beats and sleepers(seconds):
            return json.loads(beats[0].read_text())
        time.sleep(0.5)
    pytest.fail("the slow job never started")


def test_heartbeat_written_during_the_run_and_removed_after(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "slow", tmp_path / "slow")
    seconds = str(random.randint(10000, 19999))
    proc = start_slow_run(workdir, seconds)
    try:
        beat = wait_for_job(workdir, seconds)
        assert beat["schema"] == "cfw.heartbeat"
        assert beat["kind"] == "local" and beat["env"] == "local"
        assert beat["owner"].endswith("@" + os.uname().nodename)
        os.kill(beat["pid"], 0)  # the runner's process, alive
        [run_dir] = (workdir / ".cfw/local/runs").iterdir()
        assert beat["run_id"] == run_dir.name
        # a plain `cfw cancel local` leaves a live run alone
        spared = run_cfw(["cancel", "local"], cwd=workdir)
        assert spared.code == 0 and "nothing to cancel" in spared.stderr
        assert sleepers(seconds)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert heartbeats(workdir) == []


def test_sigkilled_runner_leaves_jobs_that_cancel_ends(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "slow", tmp_path / "slow")
    seconds = str(random.randint(20000, 29999))
    assert run_cfw(["up", "local", "--yes"], cwd=workdir).code == 0
    proc = start_slow_run(workdir, seconds)
    try:
        beat = wait_for_job(workdir, seconds)
        [run] = status_of(workdir)["runs"]  # the live run, its heartbeat's age
        assert run["run_id"] == beat["run_id"] and run["live"] and run["jobs"] == 1
        assert run["heartbeat_age_s"] < 120 and run["owner"] == beat["owner"]
        # the runner dies without a word: `cfw run` and its Snakemake (its own session)
        os.killpg(os.getpgid(beat["pid"]), signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=30)
        time.sleep(1)
        assert sleepers(seconds), "the job should outlive its killed runner"
        assert heartbeats(workdir), "a killed runner cannot remove its heartbeat"
        env = status_of(workdir)
        [run] = env["runs"]
        assert not run["live"] and "is gone" in run["gone"]
        assert env["jobs_running"] == 1  # the jobs the adapter finds, not the dead run's record
        shown = run_cfw(["status", "local"], cwd=workdir)
        assert f"`cfw cancel local {beat['run_id']}` cancels its jobs" in shown.stderr

        dry = run_cfw(["guard", "local", "--once", "--dry-run"], cwd=workdir)
        assert dry.code == 0, dry.output
        assert sleepers(seconds)  # a dry run ends nothing

        first = run_cfw(["cancel", "local"], cwd=workdir)
        assert first.code == 0, first.output
        assert f"cancelled 1 job of run {beat['run_id']}" in first.stderr
        deadline = time.monotonic() + 30
        while sleepers(seconds) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not sleepers(seconds), "a job process survived `cfw cancel`"
        assert heartbeats(workdir) == []

        second = run_cfw(["cancel", "local"], cwd=workdir)
        assert second.code == 0, second.output
        assert "nothing to cancel" in second.stderr
        named = run_cfw(["cancel", "local", beat["run_id"]], cwd=workdir)
        assert named.code == 0 and "nothing to cancel" in named.stderr
        guard = run_cfw(["guard", "local", "--once"], cwd=workdir)
        assert guard.code == 0 and "nothing to do" in guard.stderr, guard.output
        env = status_of(workdir)
        assert env["runs"] == [] and env["jobs_running"] == 0
        assert env["guard"]["checked_at"] and env["guard"]["last_actions"] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in sleepers(seconds):
            os.kill(int(pid), signal.SIGKILL)


def test_cancel_refuses_a_bad_run_id(tmp_path: Path):
    result = run_cfw(["cancel", "local", "../etc"], cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "is not a run id" in result.stderr
    assert not (tmp_path / ".cfw").exists()


def test_guard_needs_once(tmp_path: Path):
    result = run_cfw(["guard", "local"], cwd=tmp_path)
    assert result.code == 2 and "--once" in result.stderr


QUICK = """
rule quick:
    output:
        "results/quick.txt",
    shell:
        "echo quick > {output}"
"""


def test_a_plain_run_beside_down_and_run_teardown(tmp_path: Path, sandbox_base: Path):
    """`down` and `run --teardown` refuse while another run uses the environment, naming
    it; no traceback; the run goes on; once it ended, `down` works."""
    workdir = copy_workflow(WORKFLOWS / "slow", tmp_path / "slow")
    (workdir / "quick.smk").write_text(QUICK)
    seconds = str(random.randint(30000, 39999))
    assert run_cfw(["up", "local", "--yes"], cwd=workdir).code == 0
    proc = start_slow_run(workdir, seconds)
    try:
        beat = wait_for_job(workdir, seconds)
        down = run_cfw(["down", "local", "--yes"], cwd=workdir)
        assert down.code == 2, down.output
        assert "Traceback" not in down.output
        [line] = down.stderr.strip().splitlines()
        assert line.startswith(
            "error: not running `cfw down`: environment 'local' is in use by run "
            f"{beat['run_id']} ("
        )
        waited = run_cfw(["down", "local", "--yes", "--lock-timeout", "1"], cwd=workdir)
        assert waited.code == 2 and "in use by run" in waited.stderr

        teardown = run_cfw(["run", "--teardown", "-s", "quick.smk", "--nolock"], cwd=workdir)
        assert teardown.code == 1, teardown.output
        assert "Traceback" not in teardown.output
        assert (workdir / "results" / "quick.txt").read_text() == "quick\n"  # it ran
        last = teardown.stderr.strip().splitlines()[-1]
        assert last.startswith("error: local is not torn down: environment 'local' is in use ")
        assert f"by run {beat['run_id']}" in last
        assert status_of(workdir)["state"] == "up"
        assert sleepers(seconds), "the plain run must go on"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    down = run_cfw(["down", "local", "--yes"], cwd=workdir)
    assert down.code == 0, down.output

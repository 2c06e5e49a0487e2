"""The environment lifecycle through the CLI on the local kind, with the real Terraform."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cfw.core.state import EnvState
from conftest import WORKFLOWS, copy_workflow, run_cfw

pytestmark = pytest.mark.timeout(600)


def status(cwd: Path) -> list[dict]:
    """The environments cfw brought up here (not local's "ready" row, listed for its runs
    once local is down or was never up)."""
    result = run_cfw(["status", "--json"], cwd=cwd)
    assert result.code == 0, result.output
    return [env for env in json.loads(result.stdout) if env["state"] != "ready"]


def test_up_status_down_twice(tmp_path: Path, sandbox_base: Path):
    up = run_cfw(["up", "local", "--yes", "--ttl", "2h"], cwd=tmp_path)
    assert up.code == 0, up.output
    assert "local is up" in up.stderr
    assert (tmp_path / "environments" / "local.yaml").exists()  # resolved config written
    [env] = status(tmp_path)
    assert env["state"] == "up" and env["kind"] == "local" and env["expires_at"]
    assert env["env_id"].startswith("local-") and env["resources"] == 1
    root = Path(json.loads((tmp_path / ".cfw/local/outputs.json").read_text())["sandbox_root"])
    assert root.is_dir() and sandbox_base in root.parents
    labels = json.loads((root / ".cfw-labels.json").read_text())
    assert labels["cfw-id"] == env["env_id"]
    # working state is the owner's only
    state_dir = tmp_path / ".cfw" / "local"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    for name in ("outputs.json", "cfw.json", "terraform.tfstate", "terraform.tfvars.json"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name

    down = run_cfw(["down", "local", "--yes"], cwd=tmp_path)
    assert down.code == 0, down.output
    assert "destroyed, verified, forgotten" in down.stderr
    assert not root.exists() and not state_dir.exists()
    assert status(tmp_path) == []
    again = run_cfw(["down", "local", "--yes"], cwd=tmp_path)
    assert again.code == 0 and "nothing to destroy" in again.stderr


def test_confirmation_needed_without_terminal(tmp_path: Path):
    result = run_cfw(["up", "local"], cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and "add --yes" in result.stderr
    assert not (tmp_path / ".cfw" / "local").exists()


def test_half_up_then_down_cleans_up(tmp_path: Path):
    # the module's mkdir fails under /proc: the apply fails half-way, leaving a resource
    result = run_cfw(
        ["up", "local", "--yes", "--set", "sandbox_root=/proc/cfw-cannot"], cwd=tmp_path
    )
    assert result.code == 1, result.output
    assert "cfw down local" in result.stderr  # says how to clean up
    [env] = status(tmp_path)
    assert env["state"] == "half-up" and env["resources"] >= 1 and env["last_error"]
    down = run_cfw(["down", "local", "--yes"], cwd=tmp_path)
    assert down.code == 0, down.output
    assert status(tmp_path) == []


def test_bad_terraform_settings_leave_no_environment(tmp_path: Path):
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "dev.yaml").write_text("kind: local\nterraform:\n  plugin_mirror: /no/such/mirror\n")
    result = run_cfw(["up", "dev", "--yes"], cwd=tmp_path)
    assert result.code == 2 and "/no/such/mirror does not exist" in result.stderr
    assert status(tmp_path) == [] and not (tmp_path / ".cfw" / "dev").exists()

    # no config file: the resolved one is written only for an environment that exists
    bad = run_cfw(["up", "local", "--yes", "--set", "terraform.binary=nosuchtf"], cwd=tmp_path)
    assert bad.code == 2 and "'nosuchtf' was not found" in bad.stderr
    assert not (envs / "local.yaml").exists() and status(tmp_path) == []


def test_down_of_an_up_that_never_applied_needs_no_terraform(tmp_path: Path):
    # a Terraform whose init fails: `up` stops before anything is applied
    fake = tmp_path / "tf-init-fails"
    fake.write_text(
        '#!/bin/sh\ncase "$1" in init) echo "Error: no provider" >&2; exit 1;; esac\n'
        'exec terraform "$@"\n'
    )
    fake.chmod(0o755)
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "local.yaml").write_text(f"kind: local\nterraform:\n  binary: {fake}\n")
    up = run_cfw(["up", "local", "--yes"], cwd=tmp_path)
    assert up.code != 0, up.output
    [env] = status(tmp_path)
    assert env["resources"] == 0
    # the saved config names a Terraform that is gone now: `down` needs none
    fake.unlink()
    down = run_cfw(["down", "local", "--yes"], cwd=tmp_path)
    assert down.code == 0, down.output
    assert "nothing was created" in down.stderr
    assert status(tmp_path) == []


def test_lock_keeps_two_ups_apart(tmp_path: Path, sandbox_base: Path):
    state = EnvState(tmp_path, "local")
    with state.lock("test holder"):
        busy = run_cfw(["up", "local", "--yes"], cwd=tmp_path)
    assert busy.code == 2
    assert "is busy" in busy.stderr and "--lock-timeout" in busy.stderr
    assert not state.exists

    release = threading.Event()

    def hold():
        with state.lock("test holder"):
            release.wait(3)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    threading.Timer(2, release.set).start()
    waited = run_cfw(["up", "local", "--yes", "--lock-timeout", "60"], cwd=tmp_path)
    holder.join()
    assert waited.code == 0, waited.output
    assert run_cfw(["down", "local", "--yes"], cwd=tmp_path).code == 0


def test_ttl_and_reap(tmp_path: Path, sandbox_base: Path):
    assert run_cfw(["up", "local", "--yes", "--ttl", "1s"], cwd=tmp_path).code == 0
    time.sleep(2)
    [env] = status(tmp_path)
    assert env["expired"] is True
    listed = run_cfw(["reap", "--dry-run"], cwd=tmp_path)
    assert listed.code == 0 and "past their ttl: local" in listed.stderr
    assert status(tmp_path) != []
    reaped = run_cfw(["reap", "--yes"], cwd=tmp_path)
    assert reaped.code == 0, reaped.output
    assert status(tmp_path) == []


def test_plan_and_render(tmp_path: Path):
    plan = run_cfw(["plan", "local"], cwd=tmp_path)
    assert plan.code == 0, plan.output
    assert "1 to add, 0 to change, 0 to destroy" in plan.stderr
    out = tmp_path / "rendered"
    render = run_cfw(["render", "local", "--out", str(out)], cwd=tmp_path)
    assert render.code == 0, render.output
    assert (out / "main.tf").read_text().startswith("# generated by cfw")
    assert (out / "modules" / "local" / "main.tf").exists()
    valid = subprocess.run(["terraform", "init", "-backend=false"], cwd=out, capture_output=True)
    assert valid.returncode == 0
    assert not (tmp_path / ".cfw" / "local" / "cfw.json").exists()  # nothing came up
    assert list((tmp_path / ".cfw").iterdir()) == [tmp_path / ".cfw" / "local.lock"]


def test_init_writes_an_example_that_validates(tmp_path: Path):
    first = run_cfw(["init", "local", "--name", "dev", "--set", "jobs=3"], cwd=tmp_path)
    assert first.code == 0, first.output
    text = (tmp_path / "environments" / "dev.yaml").read_text()
    assert "kind: local" in text and "jobs: 3" in text
    again = run_cfw(["init", "local", "--name", "dev"], cwd=tmp_path)
    assert again.code == 2 and "already exists" in again.stderr
    bad = run_cfw(["init", "nosuchkind"], cwd=tmp_path)
    assert bad.code == 2 and "not a known kind" in bad.stderr


def test_run_up_teardown_after_success_and_after_failure(tmp_path: Path, sandbox_base: Path):
    ok = copy_workflow(WORKFLOWS / "temp", tmp_path / "ok")
    result = run_cfw(["run", "--up", "--teardown"], cwd=ok)
    assert result.code == 0, result.output[-2000:]
    assert "tearing down local" in result.stderr
    assert (ok / "results" / "final.txt").exists()
    assert status(ok) == []

    failing = copy_workflow(WORKFLOWS / "fails", tmp_path / "failing")
    result = run_cfw(["run", "--up", "local", "--teardown"], cwd=failing)
    assert result.code == 1
    assert "tearing down local" in result.stderr
    assert status(failing) == []
    assert not list(sandbox_base.glob("cfw-*/local-*"))  # the sandbox root went with it


def test_teardown_config_setting(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "temp", tmp_path / "cfg")
    (workdir / "environments").mkdir()
    (workdir / "environments" / "local.yaml").write_text("kind: local\nteardown: after-run\n")
    assert run_cfw(["up", "local", "--yes"], cwd=workdir).code == 0
    result = run_cfw(["run"], cwd=workdir)
    assert result.code == 0, result.output[-2000:]
    assert status(workdir) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_jobs_and_tears_down(sig, tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(WORKFLOWS / "slow", tmp_path / "slow")
    env = {**os.environ}
    env.pop("CFW_DEBUG", None)
    seconds = str(random.randint(1000, 9999))  # a sleep no other test or run has
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cfw",
            "run",
            "--up",
            "--teardown",
            "--config",
            f"seconds={seconds}",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = list((workdir / ".cfw" / "local" / "runs").glob("*/jobs.jsonl"))
            if runs and "submitted" in runs[0].read_text() and _sleepers(seconds):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the slow job never started")
        running = status(workdir)
        assert running[0]["jobs_running"] == 1
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "cancelling" in stderr and "tearing down local" in stderr
    assert "Traceback" not in stderr
    # the last line says what happened
    assert stderr.strip().splitlines()[-1] == (
        "error: the run was interrupted; its jobs were cancelled and local is torn down"
    )
    assert not _sleepers(seconds), "the job's process survived the interrupt"
    assert status(workdir) == []


def _sleepers(seconds: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, text=True)
    return out.stdout.split()

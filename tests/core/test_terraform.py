"""The Terraform wrapper against the real terraform binary, on configs that need no provider."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from cfw.core.errors import UserError, WorkFailed
from cfw.core.terraform import Progress, Terraform, count_state_resources


class Recorder(Progress):
    def __init__(self):
        self.phases: list[tuple[str, int | None]] = []
        self.resources: list[tuple[str, str, str]] = []

    def phase(self, name, total=None):
        self.phases.append((name, total))

    def resource(self, address, action, state):
        self.resources.append((address, action, state))


GOOD = """
variable "items" {
  type = list(string)
}

resource "terraform_data" "item" {
  for_each = toset(var.items)
  input    = each.value
}

output "names" {
  value = sort([for r in terraform_data.item : r.output])
}

output "token" {
  value     = "s3cr3t"
  sensitive = true
}
"""

# the third resource fails at apply time (a provisioner exits 1): a half-way failure
HALF = """
resource "terraform_data" "ok" {
  count = 2
  input = count.index
}

resource "terraform_data" "bad" {
  depends_on = [terraform_data.ok]
  provisioner "local-exec" {
    command = "echo failing on purpose >&2; exit 1"
  }
}
"""


def workdir(tmp_path: Path, body: str, tfvars: str = "{}") -> Path:
    (tmp_path / "main.tf").write_text(body)
    (tmp_path / "terraform.tfvars.json").write_text(tfvars)
    return tmp_path


def test_init_plan_apply_output_destroy(tmp_path: Path):
    rec = Recorder()
    tf = Terraform(workdir(tmp_path, GOOD, '{"items": ["a", "b", "c"]}'), progress=rec)
    tf.init()
    plan = tf.plan()
    assert plan.changes == {"add": 3, "change": 0, "remove": 0}
    applied = tf.apply()
    assert applied.changes["add"] == 3
    done = [r for r in rec.resources if r[2] == "done"]
    assert sorted(r[0] for r in done) == [
        'terraform_data.item["a"]',
        'terraform_data.item["b"]',
        'terraform_data.item["c"]',
    ]
    assert ("changes", 3) in rec.phases
    outputs = tf.output()
    assert outputs["names"] == ["a", "b", "c"]
    assert tf.sensitive == {"token"}
    assert count_state_resources(tmp_path / "terraform.tfstate") == 3
    assert len(tf.state_list()) == 3
    # state written with umask 077: readable by the owner only
    mode = stat.S_IMODE(os.stat(tmp_path / "terraform.tfstate").st_mode)
    assert mode & 0o077 == 0, oct(mode)
    tf.destroy()
    assert count_state_resources(tmp_path / "terraform.tfstate") == 0
    tf.destroy()  # a second destroy is a no-op, not an error


def test_half_way_failure_keeps_state_for_cleanup(tmp_path: Path):
    tf = Terraform(workdir(tmp_path, HALF))
    tf.init()
    with pytest.raises(WorkFailed) as caught:
        tf.apply()
    assert "terraform apply failed" in str(caught.value)
    assert "local-exec" in str(caught.value) or "exit status 1" in str(caught.value)
    assert count_state_resources(tmp_path / "terraform.tfstate") >= 2  # what was made is recorded
    tf.destroy()
    assert count_state_resources(tmp_path / "terraform.tfstate") == 0


def test_invalid_config_is_reported_with_terraform_diagnostic(tmp_path: Path):
    tf = Terraform(workdir(tmp_path, 'resource "terraform_data" "x" {\n  nonsense = 1\n}\n'))
    tf.init()
    with pytest.raises(WorkFailed, match="Unsupported argument"):
        tf.plan()
    with pytest.raises(WorkFailed, match="terraform validate failed: Unsupported argument"):
        tf.validate()


def test_missing_provider_is_a_user_error_naming_the_mirror(tmp_path: Path, monkeypatch):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    body = (
        "terraform {\n  required_providers {\n"
        '    nosuch = { source = "hashicorp/nosuchprovider" }\n  }\n}\n'
    )
    tf = Terraform(workdir(tmp_path, body), plugin_mirror=empty)
    with pytest.raises(UserError) as caught:
        tf.init()
    assert "provider mirror" in str(caught.value)


def test_missing_binary_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="not found on PATH"):
        Terraform(tmp_path, binary="terraform-does-not-exist")


def test_mirror_that_does_not_exist_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match=r"provider mirror .* does not exist"):
        Terraform(tmp_path, plugin_mirror=tmp_path / "nope")


def test_interrupt_stops_terraform_gracefully_and_state_is_saved(tmp_path: Path):
    slow = """
resource "terraform_data" "fast" {
  input = 1
}

resource "terraform_data" "slow" {
  depends_on = [terraform_data.fast]
  provisioner "local-exec" {
    command = "sleep 60"
  }
}
"""
    tf = Terraform(workdir(tmp_path, slow))
    tf.init()
    started = time.monotonic()
    timer = threading.Timer(6.0, tf.interrupt)
    timer.start()
    with pytest.raises(WorkFailed):
        tf.apply()
    timer.cancel()
    assert time.monotonic() - started < 45, "terraform did not stop on interrupt"
    # what was created before the interrupt is in the state, so `down` can remove it
    assert count_state_resources(tmp_path / "terraform.tfstate") >= 1
    tf.destroy()
    assert count_state_resources(tmp_path / "terraform.tfstate") == 0


class Messages(Recorder):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def message(self, text):
        self.messages.append(text)


SLOW_TWO = """
resource "terraform_data" "first" {
  input = 1
}

resource "terraform_data" "second" {
  depends_on = [terraform_data.first]
  provisioner "local-exec" {
    command = "sleep 6"
  }
}
"""

APPLY_IN_A_CHILD = """
import sys
from cfw.core.terraform import Terraform
Terraform(sys.argv[1]).apply()
"""


def test_terraform_outlives_a_killed_cfw_and_the_next_one_waits_for_it(tmp_path: Path):
    """SIGKILL of cfw mid-apply: Terraform (its own session, output to a file, not a pipe)
    finishes and saves the state; the next apply/destroy waits for it, then goes on."""
    import signal
    import subprocess
    import sys

    work = workdir(tmp_path, SLOW_TWO)
    Terraform(work).init()
    child = subprocess.Popen(
        [sys.executable, "-c", APPLY_IN_A_CHILD, str(work)], env={**os.environ}
    )
    deadline = time.monotonic() + 60
    while not (work / ".terraform-pid.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    progress = Messages()
    tf = Terraform(work, progress=progress)
    tf.recover()
    assert any("interrupted cfw left running" in m for m in progress.messages), progress.messages
    # the orphan finished its work: both resources are in the state, nothing was lost
    assert count_state_resources(work / "terraform.tfstate") == 2
    assert not (work / ".terraform.tfstate.lock.info").exists()
    tf.destroy()
    assert count_state_resources(work / "terraform.tfstate") == 0
    # Terraform's output, once read, stays nowhere on disk
    assert not [p.name for p in work.iterdir() if p.name.startswith(".terraform-")]


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_stale_local_lock_is_cleared_naming_it_and_a_live_one_is_kept(tmp_path: Path):
    import json
    import subprocess
    import sys

    work = workdir(tmp_path, GOOD, '{"items": ["a"]}')
    tf = Terraform(work, progress=(progress := Messages()))
    tf.init()
    tf.apply()
    info = work / ".terraform.tfstate.lock.info"
    holder = {"ID": "x", "Operation": "OperationTypeApply", "Who": "ann@laptop", "Created": "t0"}
    info.write_text(json.dumps(holder))
    # a live holder (a process holding terraform.tfstate's lock): the info stays
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(work / "terraform.tfstate")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        tf._clear_stale_lock()
        assert info.exists()
    finally:
        child.kill()
        child.wait()
    # its holder gone: cleared, and said
    tf._clear_stale_lock()
    assert not info.exists()
    said = [m for m in progress.messages if "cleared a stale Terraform lock" in m]
    assert said and str(info) in said[0] and "apply by ann@laptop" in said[0]
    tf.destroy()

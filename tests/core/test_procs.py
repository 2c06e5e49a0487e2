"""A runner that was killed is gone even while it is a zombie nobody has reaped yet."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from cfw.backends.local.guard import start_time
from cfw.core.procs import process_alive


def test_a_live_process_is_alive():
    assert process_alive(os.getpid())
    assert start_time(os.getpid()) is not None


def test_an_unreaped_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        # it exits; as its parent we do not wait for it yet: a zombie
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the child never exited")
        os.kill(child.pid, 0)  # the kernel still knows the pid
        assert not process_alive(child.pid)
        assert start_time(child.pid) is None
    finally:
        child.wait()
    assert not process_alive(child.pid)  # reaped: no such process

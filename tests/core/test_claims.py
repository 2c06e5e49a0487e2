"""Runs' claims on an environment: shared by runs, exclusive for teardown; a refusal names
the runs; --lock-timeout waits; the kernel drops the claim of a killed holder; a child
that inherited the claim keeps it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cfw.core.claims import Busy, Claims


def test_runs_share_and_teardown_is_refused_naming_them(tmp_path: Path):
    claims = Claims(tmp_path / "env", "demo")
    with claims.shared("0301aa00beef", "ann@laptop"), claims.shared("0301bb00cafe", "bo@ci"):
        with pytest.raises(Busy) as caught, claims.exclusive("down"):
            pass
        message = caught.value.message
        assert message.startswith("not running `cfw down`: environment 'demo' is in use by run ")
        assert "0301aa00beef (ann@laptop, pid" in message and "0301bb00cafe (bo@ci" in message
        assert "--lock-timeout" in caught.value.hint
    with (
        claims.exclusive("down"),  # both ended
        pytest.raises(Busy, match="being torn down"),
        claims.shared("0301cc00d00d", "ann@laptop"),
    ):
        pass
    assert claims.holders() == []


def test_lock_timeout_waits_for_the_run_to_end(tmp_path: Path):
    claims = Claims(tmp_path / "env", "demo")
    released = threading.Event()

    def run():
        with claims.shared("0301aa00beef", "ann@laptop"):
            started.set()
            time.sleep(1.0)
        released.set()

    started = threading.Event()
    thread = threading.Thread(target=run)
    thread.start()
    started.wait(5)
    t0 = time.monotonic()
    with claims.exclusive("down", timeout=30):
        assert released.is_set()
    assert time.monotonic() - t0 >= 0.5
    thread.join()


def test_a_child_holding_the_inherited_claim_keeps_it_and_a_killed_one_drops_it(tmp_path: Path):
    claims = Claims(tmp_path / "env", "demo")
    with claims.shared("0301aa00beef", "ann@laptop") as fd:
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(fd,)
        )
    try:
        # the parent let go; the child holds it still
        with pytest.raises(Busy), claims.exclusive("down"):
            pass
        child.kill()
        child.wait()
        with claims.exclusive("down"):  # the kernel dropped it with the process
            pass
    finally:
        if child.poll() is None:
            child.kill()
    assert not any(p.name.endswith(".json") for p in (tmp_path / "env").rglob("*"))
    assert os.stat(tmp_path / "env" / "run.claim").st_mode & 0o077 == 0

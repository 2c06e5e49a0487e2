"""The live view of `cfw run` on a terminal, rendered in a pseudo-terminal: environment and
run id on top, one line per rule with a bar and its counts, then the summary."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def run_in_pty(args: list[str], cwd: Path, timeout: float = 400) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CFW_DEBUG", "COLUMNS", "CI")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfw", *args],
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal's other end closed
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, ANSI.sub("", out.decode(errors="replace"))


def test_quickstart_live_view_in_a_terminal(tmp_path: Path, sandbox_base: Path):
    workdir = copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")
    code, screen = run_in_pty(["run"], workdir)
    assert code == 0, screen[-3000:]
    (run_dir,) = (workdir / ".cfw" / "local" / "runs").iterdir()
    assert f"cfw env local · run {run_dir.name} · 0:00:" in screen
    # the last frame: each rule with a full bar, its count and its time
    for rule, count in (("count_bases", "4/4"), ("gc_content", "4/4"), ("report", "1/1")):
        assert re.search(rf"{rule} +━{{30}} {count} +\d:\d\d:\d\d", screen), rule
    # a frame while jobs ran: some still waiting or running
    assert re.search(r"count_bases +━{30} [0-3]/4", screen) or " running" in screen
    assert " done in " not in screen  # the bars replace the per-job lines
    assert f"cfw: run {run_dir.name}: 9 jobs done, 0 failed" in screen
    assert "SNAKEMAKE" not in screen

"""What the local backend counts against a rule's mem_mb: the rule's processes only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cfw.backends.local.client import counts_as_the_rules, sessions_memory_mb, stop

PULP = "/venv/lib/python3.11/site-packages/pulp/apis/../solverdir/cbc/linux/i64/cbc"


def argv(*args: str) -> bytes:
    """A /proc/PID/cmdline: NUL-terminated arguments."""
    return b"".join(arg.encode() + b"\0" for arg in args)


@pytest.mark.parametrize(
    "cmdline",
    [
        argv("/venv/bin/python", "-m", "snakemake", "--target-jobs", "a:"),
        argv("/venv/bin/python", "-c", "from multiprocessing.forkserver import main; main(3)"),
        # the job's chain through the shell launcher, and Snakemake's shell for a rule
        argv("/bin/bash", "-c", "python -m snakemake --deploy-sources ... && python -m ..."),
        argv("/usr/bin/bash", "-c", "set -euo pipefail;  cp a b"),
        argv("sh", "-c", "touch x"),
        # Snakemake's ILP scheduler solves each selection in a CBC process, in every job
        argv(PULP, "/tmp/5ab8-pulp.mps", "-max", "-sec", "10", "-solution", "/tmp/5ab8-pulp.sol"),
        # exiting (or a zombie): /proc shows no command line, and the memory is going; a
        # Snakemake that ends must not count its 100 MB against the rule that just ran
        b"",
    ],
)
def test_snakemake_its_solver_and_shells_are_not_the_rules(cmdline):
    assert not counts_as_the_rules(cmdline)


@pytest.mark.parametrize(
    "cmdline",
    [
        argv("cp", "a", "b"),
        argv("python", "-c", "x = bytearray(400 * 2**20)"),
        # bash runs a script, or has exec'd the rule's last command
        argv("bash", "/root/.pyenv/libexec/pyenv", "exec", "python", "-c", "pass"),
        argv("/usr/bin/bash", "script.sh", "-c"),
        argv("/opt/bin/cbc", "model.mps"),  # a rule's own solver
    ],
)
def test_the_rules_processes_count(cmdline):
    assert counts_as_the_rules(cmdline)


def test_a_session_is_measured_by_its_rules_processes():
    """A real session: a shell (not counted) running a process that holds 64 MB."""
    hog = "x = bytearray(64 * 2**20); import sys, time; sys.stdout.write('ready\\n'); "
    hog += "sys.stdout.flush(); time.sleep(30)"
    proc = subprocess.Popen(
        ["/bin/bash", "-c", f'{sys.executable} -c "{hog}"; true'],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        used = sessions_memory_mb({proc.pid})[proc.pid]
        assert 64 <= used < 200, used
        assert sessions_memory_mb({proc.pid + 10**7}) == {proc.pid + 10**7: 0.0}
    finally:
        stop(proc, grace=1.0)

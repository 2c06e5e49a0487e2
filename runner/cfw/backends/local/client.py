"""Processes on this machine: start in a sandbox, watch memory and runtime, stop, prune.

The local "service". Each job is a new session (its own process group), so a job and
everything it starts can be measured and stopped together.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cfw.backends.local import forkrun

PAGE = os.sysconf("SC_PAGE_SIZE")
KEEP_FAILED_DAYS = 7  # how long the sandboxes of failed jobs are kept for debugging
# processes that run Snakemake itself, or that it runs for itself, not the rule: their
# memory is not the rule's. Snakemake's ILP scheduler solves each job selection with pulp's
# CBC, a process of its own (`cbc <tmp>/<uuid>-pulp.mps ...`), in every job too.
_WRAPPERS = (b"-m snakemake", b"multiprocessing.forkserver", b"-pulp.mps")
# the shells that run a job's commands and a rule's shell command (`bash -c ...`)
_SHELLS = (b"bash", b"sh")
_PASS_THROUGH = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "USER",
    "LOGNAME",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "AWS_CA_BUNDLE",
)


class CpuPool:
    """Hands out distinct CPUs to jobs so that `threads` is honoured where it can be."""

    def __init__(self, cpus: Iterable[int] | None = None):
        self.all = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self.free = list(self.all)
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        with self._lock:
            if n <= len(self.free):
                taken, self.free = self.free[:n], self.free[n:]
                return taken
        return []  # oversubscribed: the job may use every CPU

    def give(self, cpus: list[int]) -> None:
        with self._lock:
            self.free = sorted(set(self.free) | set(cpus))


@dataclass
class Proc:
    popen: subprocess.Popen | forkrun.ForkedJob
    sandbox: Path
    log: Path
    started: float
    mem_mb: int | None
    runtime_s: int | None
    cpus: list[int]
    keep: str
    killed_reason: str | None = None
    peak_mb: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)


def job_environment(
    sandbox: Path, secrets: Mapping[str, str], extra: Iterable[str]
) -> dict[str, str]:
    """A small, explicit environment, as a cloud node would give: no leaks from the shell."""
    env = {name: os.environ[name] for name in (*_PASS_THROUGH, *extra) if name in os.environ}
    python_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([python_dir, os.environ.get("PATH", "/usr/bin:/bin")])
    env["HOME"] = str(sandbox)
    env["TMPDIR"] = str(sandbox / ".tmp")
    env.update(secrets)
    return env


def sessions_memory_mb(sids: set[int]) -> dict[int, float]:
    """RSS (MB) per session, one pass over /proc, not counting Snakemake's own processes.

    A job's session holds the shell, the Snakemake that runs the job (and its scheduler's
    solver), and the rule's own processes; only the latter count against the rule's mem_mb.
    """
    usage: dict[int, float] = dict.fromkeys(sids, 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            sid, _ = _session_and_rss(entry.name)
            if sid not in usage:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read()
            if not counts_as_the_rules(cmdline):
                continue
            # measured after its command line was read: a process that exec'd or exited in
            # between counts as what it is now, not as the Snakemake it was forked from
            _, rss_pages = _session_and_rss(entry.name)
        except (OSError, ValueError, IndexError):
            continue
        usage[sid] += rss_pages * PAGE / 2**20
    return usage


def _session_and_rss(pid: str) -> tuple[int, int]:
    """The session id and resident pages of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read().decode(errors="replace")
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[3]), int(fields[21])


def counts_as_the_rules(cmdline: bytes) -> bool:
    """Whether a process of a job's session (its NUL-separated /proc cmdline) is the rule's:
    not Snakemake, not what Snakemake runs for itself, not a shell running commands, not a
    process that is exiting (its command line is already gone, its memory going)."""
    if not cmdline:
        return False
    argv = cmdline.split(b"\0")
    if len(argv) > 1 and argv[1] == b"-c" and os.path.basename(argv[0]) in _SHELLS:
        return False
    return not any(marker in cmdline.replace(b"\0", b" ") for marker in _WRAPPERS)


def start(
    argv: list[str],
    sandbox: Path,
    env: Mapping[str, str],
    log: Path,
    cpus: list[int],
    launcher: str = "fork",
) -> subprocess.Popen | forkrun.ForkedJob:
    (sandbox / ".tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    log.parent.mkdir(parents=True, exist_ok=True)
    if launcher == "fork" and argv[:2] == ["/bin/bash", "-c"]:
        parts = forkrun.parse_chain(argv[2])
        if parts is not None:
            return forkrun.start(parts, str(sandbox), env, str(log), cpus)

    def pin() -> None:  # runs in the child before exec; only async-signal-safe calls
        if cpus:
            os.sched_setaffinity(0, cpus)

    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            cwd=sandbox,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin if cpus else None,
            close_fds=True,
        )


def stop(popen: subprocess.Popen | forkrun.ForkedJob, grace: float = 5.0) -> None:
    """SIGTERM the job's whole process group, then SIGKILL what is left. Idempotent."""
    if popen.poll() is not None:
        _kill_group(popen.pid, signal.SIGKILL)  # stragglers of a finished job
        return
    _kill_group(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=grace)
    _kill_group(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=grace)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def elapsed(proc: Proc) -> float:
    return time.monotonic() - proc.started


def prune_kept_sandboxes(
    root: Path, days: float = KEEP_FAILED_DAYS, now: float | None = None
) -> list[Path]:
    """Remove the run directories under ROOT (failed jobs' sandboxes, kept for debugging)
    untouched for DAYS; returns what was removed."""
    cutoff = (time.time() if now is None else now) - days * 86400
    removed: list[Path] = []
    try:
        runs = list(root.iterdir())
    except OSError:
        return removed
    for run in runs:
        try:
            if run.is_dir() and not run.is_symlink() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)
                removed.append(run)
        except OSError:
            continue
    return removed

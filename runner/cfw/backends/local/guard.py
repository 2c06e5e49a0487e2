"""The guard's adapter for kind `local`: heartbeats in a directory under .cfw/<env>, and the
job processes found by the run's own records.

Each local job is a session of its own (client.start, forkrun): its leader's pid is its
process group. The backend writes ``runs/<run>/procs/<job>`` at submission (the pid and the
leader's start time, so that a reused pid is never taken for the job); a runner that was
killed leaves its jobs' sessions running, and these records find them. Cancel ends the whole
session (SIGTERM, then SIGKILL) and removes the record; an ended job is no error.

Nothing bills while a local environment is idle: stop has nothing to stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from cfw.backends.base import EnvContext
from cfw.core.guard import Action, Job
from cfw.core.heartbeat import LocalDirStore

PROCS = "procs"  # under a run's directory: one record per job process group
GRACE_S = 5.0


def store_of(state_dir: Path) -> LocalDirStore:
    """Where local runs keep their heartbeats: .cfw/<env>/guard."""
    return LocalDirStore(Path(state_dir) / "guard")


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None  # exited, not yet reaped (an orphan waits for a slow init)
    return int(fields[19])


def record_job(run_dir: Path, external_id: str, pid: int) -> None:
    """At submission: the job's session leader, for a runner that outlives nothing."""
    folder = Path(run_dir) / PROCS
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = start_time(pid)
    path = folder / external_id
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{pid} {started if started is not None else ''}\n")


class LocalGuard:
    """Adapter (cfw.core.guard_check) of a local environment."""

    prefix = ""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.store = store_of(self.state_dir)

    def _records(self) -> list[tuple[Path, str, int]]:
        """(record, run id, pid) of every job session still alive as recorded."""
        found = []
        for path in sorted((self.state_dir / "runs").glob(f"*/{PROCS}/*")):
            try:
                pid_text, _, started = path.read_text().strip().partition(" ")
                pid = int(pid_text)
            except (OSError, ValueError):
                continue
            now = start_time(pid)
            if now is None or (started and str(now) != started):
                with contextlib.suppress(OSError):
                    path.unlink()  # ended (or its pid reused): nothing to find
                continue
            found.append((path, path.parent.parent.name, pid))
        return found

    def jobs(self) -> list[Job]:
        jobs = []
        for path, run_id, _pid in self._records():
            try:
                created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except OSError:
                continue
            jobs.append(Job(f"{run_id}/{path.name}", run_id, "RUNNING", created))
        return jobs

    def stopped(self) -> bool | None:
        return None  # nothing bills while idle

    def cancel(self, action: Action) -> list[str]:
        wanted = set(action.job_ids)
        ended = []
        targets = [
            (path, pid, f"{run_id}/{path.name}")
            for path, run_id, pid in self._records()
            if f"{run_id}/{path.name}" in wanted
            or (not wanted and action.run_id and run_id == action.run_id)
        ]
        for _path, pid, _job in targets:
            _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(_alive_group(p) for _x, p, _j in targets):
            time.sleep(0.1)
        for path, pid, job in targets:
            _kill_group(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                path.unlink()
            ended.append(job)
        return ended

    def stop(self, action: Action) -> str:
        return "nothing to stop: a local environment costs nothing while idle"


def adapter_for(ctx: EnvContext) -> LocalGuard:
    return LocalGuard(ctx.state_dir)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _alive_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

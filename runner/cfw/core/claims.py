"""Runs' claims on an environment: every `cfw run` holds a shared claim while it runs;
`down`, `run --teardown` and `reap` take it exclusively, so they refuse (or wait) while
another run uses the environment, and name the runs.

The claim is an flock on ``.cfw/<env>/run.claim``: shared by runs, exclusive for teardown.
The kernel releases it when its holders are gone, so a killed run never leaves a claim
behind. A run's claim is inherited by the Snakemake it starts (the same open file), so
the claim lasts while either lives. Who holds it is written beside it, one file per run in
``.cfw/<env>/claims/`` (for messages only; the lock decides). Other machines' runs are
seen by their heartbeats (cfw.core.heartbeat), not here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from cfw.core.errors import UserError
from cfw.core.state import now, private_dir, write_private

CLAIM = "run.claim"
HOLDERS = "claims"


class Busy(UserError):
    """Another run uses the environment: a teardown refused."""


class Claims:
    def __init__(self, env_dir: Path, name: str):
        self.dir = Path(env_dir)
        self.name = name
        self.path = self.dir / CLAIM
        self.holders_dir = self.dir / HOLDERS

    def _open(self) -> int:
        private_dir(self.dir)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def shared(self, run_id: str, owner: str) -> Iterator[int]:
        """The claim of run RUN_ID; yields the file descriptor to hand to its Snakemake
        (pass_fds) so that the claim lasts while either process lives."""
        fd = self._open()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(
                    f"environment {self.name!r} is being torn down by another cfw",
                    f"wait for it to finish, then `cfw up {self.name}` again if you need it",
                ) from None
            private_dir(self.holders_dir)
            info = {"run_id": run_id, "pid": os.getpid(), "owner": owner, "since": _now()}
            holder = self.holders_dir / f"{run_id}.json"
            write_private(holder, json.dumps(info) + "\n")
            try:
                yield fd
            finally:
                holder.unlink(missing_ok=True)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self, operation: str, timeout: float = 0.0) -> Iterator[None]:
        """No run holds a claim (waiting up to TIMEOUT seconds for them to end), and none
        can start, for the time of OPERATION (`down`, `run --teardown`, `reap`)."""
        fd = self._open()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Busy(
                            f"not running `cfw {operation}`: environment {self.name!r} is in "
                            f"use by {self.describe_holders()}",
                            "wait for the run to end, or pass --lock-timeout SECONDS to wait",
                        ) from None
                    time.sleep(0.5)
            # nobody holds a claim: what is written is from runs that ended
            for stale in self.holders_dir.glob("*.json"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holders(self) -> list[dict]:
        found = []
        for path in sorted(self.holders_dir.glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found

    def describe_holders(self) -> str:
        runs = [
            f"run {h.get('run_id', '?')} ({h.get('owner', '?')}, pid {h.get('pid', '?')}, "
            f"since {h.get('since', '?')})"
            for h in self.holders()
        ]
        if not runs:
            return "a running `cfw run`"
        return ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")


def _now() -> str:
    return now().isoformat(timespec="seconds")

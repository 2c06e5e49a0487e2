"""A run's heartbeat in its environment's store: written before the first job, rewritten
about once a minute by a thread of its own (never on the submission path), removed when the
run ends. The guard and `cfw cancel` take a run whose heartbeat stopped for one whose
runner is gone (cfw.core.guard).

A store that cannot be written is said once, as a warning, and the run goes on: a run must
not fail because its heartbeat could not be written (the guard then judges its jobs by
their age alone, and says so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from cfw import __version__
from cfw.backends.base import EnvContext
from cfw.backends.kind import Kind
from cfw.core import heartbeat
from cfw.core.heartbeat import Heartbeat, HeartbeatStore

INTERVAL_S = heartbeat.INTERVAL.total_seconds()


class Heartbeats:
    """The heartbeat of one run, kept by a daemon thread."""

    def __init__(
        self,
        store: HeartbeatStore,
        prefix: str,
        first: Heartbeat,
        active: Callable[[], int],
        warn: Callable[[str], None],
        interval_s: float = INTERVAL_S,
    ):
        self.store, self.prefix, self.current = store, prefix, first
        self.active, self.warn, self.interval_s = active, warn, interval_s
        self.written = 0  # successful writes, for tests and status
        self._failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeats:
        """The first write, here (before any job is submitted), then the thread."""
        self._write()
        self._thread = threading.Thread(target=self._loop, name="cfw-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.current = self.current.beat(datetime.now(UTC), self._active())
            self._write()

    def _active(self) -> int:
        try:
            return max(int(self.active()), 0)
        except Exception:
            return self.current.jobs_active

    def _write(self) -> None:
        try:
            heartbeat.write(self.store, self.prefix, self.current)
            self.written += 1
        except Exception as exc:  # the run goes on; said once
            if not self._failed:
                self._failed = True
                self.warn(
                    f"cfw: could not write run {self.current.run_id}'s heartbeat "
                    f"({type(exc).__name__}: {_short(exc)}); the run goes on, but the guard "
                    "will judge its jobs by their age alone"
                )

    def stop(self) -> None:
        """The run ended: the thread stops and the heartbeat is removed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            heartbeat.remove(self.store, self.prefix, self.current.run_id)
        except Exception as exc:
            self.warn(
                f"cfw: could not remove run {self.current.run_id}'s heartbeat "
                f"({type(exc).__name__}: {_short(exc)}); the guard will take it for a "
                "run whose runner is gone, and find no job to cancel"
            )


def start_heartbeats(
    kind: Kind,
    ctx: EnvContext,
    environ: Mapping[str, str],
    active: Callable[[], int],
    warn: Callable[[str], None],
) -> Heartbeats | None:
    """The run's heartbeat, started; None where the kind keeps none (or its store cannot
    be opened: said once)."""
    if ctx.explain:
        return None
    try:
        placed = kind.heartbeat_store(ctx, environ)
    except Exception as exc:
        warn(
            f"cfw: run {ctx.run_id} keeps no heartbeat ({type(exc).__name__}: {_short(exc)}); "
            "the guard will judge its jobs by their age alone"
        )
        return None
    if placed is None:
        return None
    store, prefix = placed
    try:
        first = heartbeat.start(
            ctx.run_id,
            kind=kind.name,
            env=ctx.name,
            cfw_version=__version__,
            now=datetime.now(UTC),
        )
    except ValueError as exc:  # a run id no label keeps as it is (a user's --cfw-run-id)
        warn(f"cfw: run {ctx.run_id} keeps no heartbeat: {exc}")
        return None
    return Heartbeats(store, prefix, first, active, warn).start()


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

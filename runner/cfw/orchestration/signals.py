"""Signals while cfw waits for a child (Snakemake): forward the first Ctrl-C, then let the
work it asked for (cancelling jobs, tearing down) finish undisturbed."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator

from cfw.core.report import Reporter

INTERRUPT_GRACE = 120.0  # seconds Snakemake gets to cancel its jobs after a Ctrl-C


def wait_forwarding_signals(
    proc: subprocess.Popen,
    grace: float = INTERRUPT_GRACE,
    tick: Callable[[], None] | None = None,
    every: float = 0.5,
) -> int:
    """Wait for Snakemake, calling ``tick`` every ``every`` seconds meanwhile (the run's
    account); on SIGINT/SIGTERM ask it to cancel its jobs and wait for that."""
    try:
        while True:
            try:
                return proc.wait(timeout=every if tick else None)
            except subprocess.TimeoutExpired:
                if tick is not None:
                    tick()
    except KeyboardInterrupt:
        Reporter().info("interrupted: cancelling the run's jobs (this can take a moment)")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        with signals_deferred():
            deadline = grace
            while deadline > 0:
                try:
                    proc.wait(timeout=min(every, deadline))
                    break
                except subprocess.TimeoutExpired:
                    deadline -= every
                    if tick is not None:
                        tick()
            else:
                proc.kill()
                proc.wait()
        raise


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while finishing the work a first one asked for (cancelling
    jobs, tearing down): a second Ctrl-C must not cut that short, and is not re-delivered."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

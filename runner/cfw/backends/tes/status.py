"""TES task states -> what Snakemake is told. Pure: no SDK, no network."""

from __future__ import annotations

from cfw.backends.base import JobState, JobStatus

# UNKNOWN, QUEUED, INITIALIZING, RUNNING and PAUSED are not finished (UNKNOWN is "no state
# yet", never a verdict)
STATES: dict[str, JobStatus] = {
    "UNKNOWN": JobStatus(JobState.PENDING),
    "QUEUED": JobStatus(JobState.PENDING, reason="the TES task is QUEUED (no machine took it)"),
    "INITIALIZING": JobStatus(
        JobState.PENDING, reason="the TES task is INITIALIZING (its machine is starting)"
    ),
    "RUNNING": JobStatus(JobState.RUNNING),
    "PAUSED": JobStatus(JobState.RUNNING, reason="paused by the server"),
    "COMPLETE": JobStatus(JobState.SUCCEEDED, exit_code=0),
    "EXECUTOR_ERROR": JobStatus(
        JobState.FAILED, reason="the job's command failed (EXECUTOR_ERROR)"
    ),
    "SYSTEM_ERROR": JobStatus(
        JobState.FAILED, reason="the TES server failed to run it (SYSTEM_ERROR)"
    ),
    # not the job's failure: cfw resubmits it, on spot then on demand (executor/retry.py)
    "PREEMPTED": JobStatus(
        JobState.PREEMPTED, reason="preempted: its machine was reclaimed (PREEMPTED)"
    ),
    "CANCELING": JobStatus(JobState.CANCELLED, reason="cancelled (CANCELING)"),
    "CANCELED": JobStatus(JobState.CANCELLED, reason="cancelled (CANCELED)"),
}


def status_of(state: str | None) -> JobStatus:
    """A task's state (None or one this table lacks: no state yet) as a JobStatus."""
    return STATES.get(state or "UNKNOWN", STATES["UNKNOWN"])

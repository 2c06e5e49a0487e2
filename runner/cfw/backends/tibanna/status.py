"""Step Functions execution states -> what Snakemake is told. Pure: no SDK, no network."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from cfw.backends.base import JobState, JobStatus

# Step Functions execution status -> what Snakemake is told
EXECUTION_STATES = {
    "RUNNING": JobState.RUNNING,
    "PENDING_REDRIVE": JobState.PENDING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "TIMED_OUT": JobState.FAILED,
    "ABORTED": JobState.CANCELLED,
}


def status_of(desc: Mapping[str, Any] | None) -> JobStatus:
    """A DescribeExecution answer as a JobStatus (None: the execution does not exist)."""
    if desc is None:
        return JobStatus(JobState.FAILED, reason="the Tibanna execution does not exist")
    status = desc.get("status", "")
    state = EXECUTION_STATES.get(status)
    if state is None:
        return JobStatus(JobState.FAILED, reason=f"unknown execution status {status!r}")
    if state == JobState.SUCCEEDED:
        return JobStatus(state, exit_code=0)
    if state == JobState.FAILED:
        what = "timed out" if status == "TIMED_OUT" else "failed"
        detail = ": ".join(p for p in (desc.get("error"), _short(desc.get("cause"))) if p)
        return JobStatus(
            state, reason=f"Tibanna execution {what}" + (f" ({detail})" if detail else "")
        )
    if state == JobState.CANCELLED:
        return JobStatus(state, reason="Tibanna execution aborted")
    return JobStatus(state)


def _short(cause: str | None, limit: int = 300) -> str | None:
    if not cause:
        return None
    with contextlib.suppress(ValueError, AttributeError):  # Lambda errors: {"errorMessage": ...}
        cause = json.loads(cause).get("errorMessage", cause)
    cause = " ".join(str(cause).split())
    return cause if len(cause) <= limit else cause[: limit - 3] + "..."


SPOT_FAILURE = "spot_failure"  # <jobid>.spot_failure: awsf3 saw AWS's interruption notice


def preempted(status: JobStatus, spot_failure: bool) -> JobStatus:
    """A failed or stopped execution whose instance left ``<jobid>.spot_failure`` in the
    log bucket: its spot instance was reclaimed (cfw resubmits it, executor/retry.py)."""
    if not spot_failure or status.state not in (JobState.FAILED, JobState.CANCELLED):
        return status
    return JobStatus(
        JobState.PREEMPTED,
        reason="AWS reclaimed the spot instance (its interruption notice left "
        f"<jobid>.{SPOT_FAILURE} in the log bucket); " + (status.reason or "stopped"),
    )

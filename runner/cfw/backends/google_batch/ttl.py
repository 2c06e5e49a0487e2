"""No Google Batch job outlives the environment's ttl.

Google Batch jobs are VMs of their own, with nothing of the environment billing while
idle, so the guard's job here is to bound every job: at submission, each task's
maxRunDuration becomes at most the time left until the environment's cfw-expires-at (its
own `runtime` limit, when shorter, stays); past the ttl, nothing is submitted. A job whose
runner dies mid-run therefore stops at the ttl at the latest, by the service itself, with
no guard process to run. Without a ttl, an orphaned job runs until its own runtime limit or
its end: `cfw cancel` / `cfw guard NAME --once` end it earlier.

Pure: the time is given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cfw.core.ttl import capped, expires_at, seconds_left

__all__ = ["bound", "expires_at"]


def bound(request: Any, expires: datetime | None, now: datetime) -> Any:
    """REQUEST (a CreateJobRequest) with each task's max_run_duration at most the time
    left; WorkFailed when no time is left."""
    left = seconds_left(expires, now)
    if left is None:
        return request
    for group in request.job.task_groups:
        task = group.task_spec
        current = task.max_run_duration.total_seconds() if "max_run_duration" in task else 0
        task.max_run_duration = timedelta(seconds=capped(current, left))
    return request

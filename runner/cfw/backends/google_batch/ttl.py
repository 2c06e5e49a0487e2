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

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cfw.core.errors import WorkFailed
from cfw.core.guard import format_expires_at, parse_expires_at

MIN_SECONDS = 60  # a job given less than this is not worth a VM's boot


def expires_at(outputs: Mapping[str, Any]) -> datetime | None:
    """The environment's cfw-expires-at, from the labels its root module outputs."""
    labels = outputs.get("cfw_labels") or {}
    return parse_expires_at(labels.get("cfw-expires-at")) if isinstance(labels, Mapping) else None


def bound(request: Any, expires: datetime | None, now: datetime) -> Any:
    """REQUEST (a CreateJobRequest) with each task's max_run_duration at most the time
    left; WorkFailed when no time is left."""
    if expires is None:
        return request
    left = int((expires - now).total_seconds())
    if left < MIN_SECONDS:
        raise WorkFailed(
            f"the environment's ttl ends at {format_expires_at(expires)}: no job is "
            "started after it (`cfw up` with a longer ttl extends it)"
        )
    for group in request.job.task_groups:
        task = group.task_spec
        current = task.max_run_duration.total_seconds() if "max_run_duration" in task else 0
        if not current or current > left:
            task.max_run_duration = timedelta(seconds=left)
    return request

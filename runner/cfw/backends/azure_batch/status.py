"""A Batch task's state as cfw reads it, and its :class:`JobStatus`. Pure: no SDK import,
no call; the SDK's task objects are read by attribute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cfw.backends.base import JobState, JobStatus


@dataclass(frozen=True)
class TaskState:
    id: str
    state: str  # active, preparing, running, completed
    transition: datetime | None
    result: str | None = None  # success / failure
    exit_code: int | None = None
    failure: str | None = None  # code: message
    node: str | None = None
    requeues: int = 0  # times Batch requeued it (its low-priority node was preempted)


def wire(value: Any) -> str | None:
    """An SDK enum (or the plain string the service sent) as its wire value."""
    return None if value is None else str(getattr(value, "value", value))


def task_state(task: Any) -> TaskState:
    """The fields cfw uses of a listed task (the SDK's BatchTask)."""
    info = task.execution_info
    failure = None
    if info is not None and info.failure_info is not None:
        failure = f"{info.failure_info.code}: {info.failure_info.message}"
    return TaskState(
        id=task.id,
        state=wire(task.state) or "active",
        transition=task.state_transition_time,
        result=wire(info.result) if info is not None else None,
        exit_code=info.exit_code if info is not None else None,
        failure=failure,
        node=task.node_info.node_id if task.node_info else None,
        requeues=(info.requeue_count or 0) if info is not None else 0,
    )


def preempted(task: TaskState, spot_retries: int) -> JobStatus | None:
    """A spot task that Batch requeued after more preemptions than the run allows on
    spot (Batch requeues a task whose low-priority node is preempted by itself, again
    and again): a PREEMPTED status (cfw stops it and resubmits it to dedicated nodes)."""
    if task.requeues <= spot_retries or task.state == "completed":
        return None
    return JobStatus(
        JobState.PREEMPTED,
        reason=f"its low-priority node was preempted {task.requeues} times "
        f"(Batch requeued the task each time)",
        preemptions=task.requeues,
    )


def task_status(task: TaskState, cancelled: bool = False) -> JobStatus:
    """The job's status from its task; ``cancelled``: this run terminated the task."""
    if task.state in ("active", "preparing"):
        return JobStatus(JobState.PENDING, reason=f"the Batch task is {task.state}")
    if task.state == "running":
        return JobStatus(JobState.RUNNING)
    if cancelled:
        return JobStatus(JobState.CANCELLED, reason="cancelled", exit_code=task.exit_code)
    if task.result == "success":
        return JobStatus(JobState.SUCCEEDED, exit_code=task.exit_code)
    reason = task.failure or (
        f"exit code {task.exit_code}" if task.exit_code is not None else "failed"
    )
    if task.failure and "MaxWallClockTimeExpiry" in task.failure:
        reason = "exceeded its runtime (maxWallClockTime)"
    if task.node:
        reason += f" on node {task.node}"
    return JobStatus(JobState.FAILED, reason=reason, exit_code=task.exit_code)

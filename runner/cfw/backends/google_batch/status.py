"""A Google Batch job's state as a :class:`JobStatus`. Pure: no SDK import, no call; the
SDK's Job messages are read by attribute."""

from __future__ import annotations

from typing import Any

from cfw.backends.base import JobState, JobStatus

# Batch's exit codes for what happened to the VM rather than the job
# (cloud.google.com/batch/docs/troubleshooting)
VM_EXIT_CODES = {
    50001: "the spot VM was preempted",
    50002: "the VM stopped reporting to Batch",
    50003: "the VM was rebooted",
    50004: "the VM and the task stopped responding",
    50005: "the task ran longer than its runtime (max_run_duration)",
    50006: "the VM was recreated",
}
# the codes of a lost VM (all but the job's own overrun): a preemption, resubmitted by cfw
VM_LOSS_CODES = frozenset(VM_EXIT_CODES) - {50005}
# Batch's job states (JobStatus.State) that are not PENDING: QUEUED, SCHEDULED and
# STATE_UNSPECIFIED are
STATES = {
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "RUNNING": JobState.RUNNING,
    "CANCELLED": JobState.CANCELLED,
    "CANCELLATION_IN_PROGRESS": JobState.CANCELLED,
    "DELETION_IN_PROGRESS": JobState.CANCELLED,
}
FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED"}  # Batch's states of a job that is over


def status_of(job: Any) -> JobStatus:
    """The status of a Batch Job message; a failure's reason from its task's exit code."""
    state = job.status.state.name
    mapped = STATES.get(state, JobState.PENDING)
    if mapped == JobState.PENDING:  # QUEUED, SCHEDULED: why, as Batch's last event says
        events = [e.description for e in job.status.status_events if e.description]
        return JobStatus(
            mapped, reason=f"the Batch job is {state}" + (f": {events[-1]}" if events else "")
        )
    if mapped != JobState.FAILED:
        return JobStatus(mapped)
    codes = [
        event.task_execution.exit_code
        for event in job.status.status_events
        if event.task_execution and event.task_execution.exit_code
    ]
    code = codes[-1] if codes else None
    if code in VM_LOSS_CODES:
        # the VM, not the job: a preemption; Batch may have retried it on spot already
        # (maxRetryCount), each retry an event with its own code
        return JobStatus(
            JobState.PREEMPTED,
            reason=f"{VM_EXIT_CODES[code]} (Batch exit code {code})",
            exit_code=code,
            preemptions=max(1, sum(c in VM_LOSS_CODES for c in codes)),
        )
    if code in VM_EXIT_CODES:
        reason = f"{VM_EXIT_CODES[code]} (Batch exit code {code})"
    elif code is not None:
        reason = f"exit code {code}"
    else:
        events = [e.description for e in job.status.status_events if e.description]
        reason = events[-1] if events else "failed"
    return JobStatus(JobState.FAILED, reason=reason, exit_code=code)

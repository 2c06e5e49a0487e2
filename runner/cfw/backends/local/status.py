"""A finished (or overrunning) process on this machine -> JobStatus. Pure.

A process's exit code and the reason cfw stopped it (memory, runtime, cancel) decide its
status; a failed job says why, and where its sandbox was kept for debugging.
"""

from __future__ import annotations

from pathlib import Path

from cfw.backends.base import JobState, JobStatus

RUNNING = JobStatus(JobState.RUNNING)
UNKNOWN = JobStatus(JobState.FAILED, reason="unknown to this run")


def succeeded(code: int, killed_reason: str | None) -> bool:
    return code == 0 and killed_reason is None


def keeps_sandbox(keep: str, ok: bool) -> bool:
    """Whether a job's sandbox outlives it, by the `keep_sandboxes` setting."""
    return keep == "always" or (keep == "on-failure" and not ok)


def limit_exceeded(
    used_mb: float, mem_mb: int | None, elapsed_s: float, runtime_s: int | None
) -> str | None:
    """Why a running job must be stopped (over its mem_mb or runtime), or None."""
    if mem_mb and used_mb > mem_mb:
        return f"out of memory: used {used_mb:.0f} MB, more than mem_mb={mem_mb}"
    if runtime_s and elapsed_s > runtime_s:
        return f"exceeded its runtime of {runtime_s // 60} min"
    return None


def finished_status(code: int, killed_reason: str | None, kept: Path | None = None) -> JobStatus:
    """The status of a process that ended with CODE (negative: the signal that killed it),
    stopped by cfw for KILLED_REASON if any, its sandbox KEPT at a path or removed."""
    if succeeded(code, killed_reason):
        return JobStatus(JobState.SUCCEEDED, exit_code=0)
    if killed_reason:
        reason = killed_reason
    elif code < 0:
        reason = f"killed by signal {-code}"
    else:
        reason = f"exit code {code}"
    if kept is not None:
        reason += f"; sandbox kept at {kept}"
    return JobStatus(JobState.FAILED, reason=reason, exit_code=code)

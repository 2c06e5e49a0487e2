"""A job that waits for capacity forever looks like a hang: ``pending_timeout`` ends it.

A job the service still holds as pending (TES QUEUED, a Batch task no node has taken, a
Google Batch job QUEUED/SCHEDULED, a Tibanna execution with no instance) for
``pending_timeout`` (default 30m) while none of the run's jobs runs is cancelled and fails
with the service's own reason. While some job of the run runs, a waiting job is taken to
be queueing for capacity that will free up, and its clock starts again. A backend that
enforces the timeout itself (the Kubernetes kinds: a pod Unschedulable for that long)
says so with ``Backend.watches_pending``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from cfw.backends.base import JobState, JobStatus
from cfw.core.config import format_duration


@dataclass
class PendingWatch:
    timeout: timedelta
    clock: Callable[[], float] = time.monotonic
    since: dict[str, float] = field(default_factory=dict)  # external id -> waiting since
    reasons: dict[str, str] = field(default_factory=dict)  # the service's latest reason

    def expired(self, statuses: Mapping[str, JobStatus]) -> dict[str, str]:
        """The jobs that waited too long, each with why it fails."""
        now = self.clock()
        running = any(s.state == JobState.RUNNING for s in statuses.values())
        out: dict[str, str] = {}
        for ext, status in statuses.items():
            if status.state != JobState.PENDING:
                self.since.pop(ext, None)
                continue
            if status.reason:
                self.reasons[ext] = status.reason
            if running:
                self.since[ext] = now  # the run progresses: capacity will free up
                continue
            since = self.since.setdefault(ext, now)
            if now - since >= self.timeout.total_seconds():
                why = self.reasons.get(ext) or "the service gave no reason"
                out[ext] = (
                    f"waited {format_duration(self.timeout)} for capacity with none of the "
                    f"run's jobs running (pending_timeout): {why}"
                )
        return out


class PendingMixin:
    """The executor's side: expired pending jobs are cancelled and reported failed."""

    def pending_timeouts(self, statuses: dict[str, JobStatus]) -> dict[str, JobStatus]:
        if getattr(self.backend, "watches_pending", False):
            return statuses
        watch = getattr(self, "_pending", None)
        if watch is None:
            watch = self._pending = PendingWatch(self.ctx.config.pending_timeout)
        expired = watch.expired(statuses)
        if not expired:
            return statuses
        self.backend.cancel(sorted(expired))
        return {
            **statuses,
            **{ext: JobStatus(JobState.FAILED, reason=why) for ext, why in expired.items()},
        }

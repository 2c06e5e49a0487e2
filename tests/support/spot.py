"""Drives the executor's spot retries (cfw/executor/retry.py: SpotMixin) against a kind's
real backend and that service's fake, the way CfwExecutor.check_active_jobs does: submit,
poll until finished, hand a PREEMPTED job to the retries, watch the successor. The run's
records are the real ones (RunTracker, RunLog)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.kind import Kind
from cfw.core.records import RunLog, job_records
from cfw.executor.pending import PendingMixin, PendingWatch
from cfw.executor.retry import SpotMixin, SpotPolicy, SpotRetries
from cfw.executor.tracker import RunTracker


@dataclass
class Outcome:
    state: JobState  # of the last submission
    reason: str | None
    external_ids: list[str] = field(default_factory=list)  # every submission, in order
    specs: list[JobSpec] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


class SpotDriver(SpotMixin):
    def __init__(
        self,
        kind: Kind,
        ctx: EnvContext,
        backend: Backend,
        policy: SpotPolicy,
        run_dir: Path,
        secrets: dict[str, str] | None = None,
    ):
        self.kind, self.ctx, self.backend = kind, ctx, backend
        self._spot = SpotRetries(policy, kind, ctx)
        self.tracker = RunTracker(RunLog(run_dir, ctx.name, ctx.run_id))
        self.specs: dict[str, JobSpec] = {}
        self.logger = logging.getLogger("cfw.test.spot")
        self.secrets = dict(secrets or {})

    def envvars(self) -> dict[str, str]:
        return dict(self.secrets)

    def submit(self, spec: JobSpec) -> str:
        spec = self.spot.policy.spec(spec)
        external_id = self.backend.submit(spec, self.kind.translate(spec, self.ctx), self.secrets)
        self.specs[external_id] = spec
        self.tracker.submitted(spec, external_id)
        return external_id

    def run(
        self,
        spec: JobSpec,
        service: Callable[[str, JobSpec, int], None],
        polls: int = 50,
    ) -> Outcome:
        """Submit SPEC and follow it to its end; ``service(external_id, spec, n)`` plays
        the service for the n-th submission (preempts it, runs it, fails it)."""
        ext = self.submit(spec)
        outcome = Outcome(JobState.PENDING, None, [ext], [self.specs[ext]])
        service(ext, self.specs[ext], 0)
        for _ in range(polls):
            status: JobStatus = self.backend.poll([ext])[ext]
            if not status.state.finished:
                self.tracker.seen(ext, status.state)
                continue
            if status.state == JobState.PREEMPTED:
                info = SimpleNamespace(external_jobid=ext, job=None)
                successor, why = self.spot_preempted(info, self.specs[ext], status, None)
                outcome.messages.append(why)
                if successor is not None:
                    ext = successor.external_jobid
                    outcome.external_ids.append(ext)
                    outcome.specs.append(self.specs[ext])
                    service(ext, self.specs[ext], len(outcome.external_ids) - 1)
                    continue
                self.tracker.failed(ext, spec.jobid, why, None)
                outcome.state, outcome.reason = JobState.FAILED, why
                break
            if status.state == JobState.SUCCEEDED:
                self.tracker.succeeded(ext, spec.jobid)
            else:
                self.tracker.failed(ext, spec.jobid, status.reason or "failed", None)
            outcome.state, outcome.reason = status.state, status.reason
            break
        self.tracker.finish("success" if outcome.state == JobState.SUCCEEDED else "failure")
        return outcome

    def records(self) -> list[dict[str, Any]]:
        return job_records(self.tracker.run_log.dir)


class Clock:
    """An injectable clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def minutes(self, n: float) -> None:
        self.now += n * 60


class PendingDriver(PendingMixin):
    """The executor's pending timeout (cfw/executor/pending.py) over a kind's backend."""

    def __init__(self, ctx: EnvContext, backend: Backend, clock: Clock):
        self.ctx, self.backend = ctx, backend
        self._pending = PendingWatch(ctx.config.pending_timeout, clock)

    def poll(self, ids: list[str]) -> dict[str, JobStatus]:
        return self.pending_timeouts(self.backend.poll(ids))

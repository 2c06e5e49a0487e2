"""What the executor knows about each job of a run, in one place, and its records.

Every fact about a job (when it was submitted, first seen running, finished; its attempts,
its outcome and why; its price) is kept here; the run's records (run.json, jobs.jsonl) are
written from it in batches, at most about once a second and at the end, never per job
event. With a :class:`~cfw.executor.cost.RunCost`, every attempt is priced at submission
and run.json carries the run's estimated cost (executor/cost.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cfw.backends.base import JobSpec, JobState
from cfw.core.prices import JobPrice
from cfw.core.records import RunLog
from cfw.executor.cost import RunCost, attempt_of

FLUSH_SECONDS = 1.0


@dataclass
class TrackedJob:
    jobid: int
    rule: str
    external_id: str
    attempt: int
    submitted: float
    state: JobState = JobState.PENDING
    started: float | None = None  # first seen running
    finished: float | None = None
    reason: str | None = None
    log: str | None = None
    price: JobPrice | None = None  # what this attempt pays per hour (an estimate)
    preempted: bool = False  # its machine was reclaimed (executor/retry.py resubmits it)

    @property
    def open(self) -> bool:
        return not self.state.finished


@dataclass(frozen=True)
class Counts:
    done: int = 0
    running: int = 0  # submitted and not finished
    failed: int = 0
    cancelled: int = 0


class RunTracker:
    def __init__(
        self,
        run_log: RunLog,
        clock: Callable[[], float] = time.time,
        flush_seconds: float = FLUSH_SECONDS,
        cost: RunCost | None = None,
    ):
        self.run_log = run_log
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.cost = cost
        self.jobs: dict[str, TrackedJob] = {}
        self._lock = threading.RLock()  # the scheduler's and the status thread's
        self._last_flush = 0.0
        self._dirty = False
        # kept as jobs change, so that a job event costs the same at job 10 and job 10,000
        self._tally = {"open": 0, **{state: 0 for state in JobState}}

    # -- events -----------------------------------------------------------------------------
    def submitted(self, spec: JobSpec, external_id: str) -> TrackedJob:
        with self._lock:
            job = TrackedJob(spec.jobid, spec.rule, external_id, spec.attempt, self.clock())
            if self.cost is not None:
                self.cost.submitted(spec, job)
            previous = self.jobs.get(external_id)
            if previous is not None:  # the same id again (a backend that reuses ids)
                self._untally(previous)
            self.jobs[external_id] = job
            self._tally["open"] += 1
            priced = {"price": job.price.as_record()} if job.price else {}
            if spec.preempted:  # a resubmission after a preemption
                priced["resubmission"] = spec.preempted
            self._event(
                "submitted",
                jobid=spec.jobid,
                rule=spec.rule,
                external_id=external_id,
                attempt=spec.attempt,
                t=job.submitted,
                capacity="spot" if spec.preemptible else "on-demand",
                **priced,
            )
            return job

    def seen(self, external_id: str, state: JobState) -> None:
        """A poll's view of an open job (running: it has started)."""
        with self._lock:
            job = self.jobs.get(external_id)
            if job is None or not job.open:
                return
            if state == JobState.RUNNING and job.started is None:
                job.started = self.clock()
                self._event("started", jobid=job.jobid, external_id=external_id, t=job.started)
            if not state.finished:
                job.state = state

    def succeeded(self, external_id: str, jobid: int) -> None:
        self._finish(external_id, JobState.SUCCEEDED, "succeeded", jobid=jobid)

    def failed(
        self, external_id: str, jobid: int, reason: str, log: str | None, hint: str | None = None
    ) -> None:
        extra = {"hint": hint} if hint else {}
        self._finish(
            external_id, JobState.FAILED, "failed", jobid=jobid, reason=reason, log=log, **extra
        )

    def preempted(
        self, external_id: str, jobid: int, reason: str, log: str | None, then: str | None
    ) -> None:
        """Its machine was reclaimed; ``then``: the capacity it is resubmitted on (None:
        the job fails)."""
        with self._lock:
            job = self.jobs.get(external_id)
            if job is not None:
                job.preempted = True
            if then is None:  # the job fails next (RunTracker.failed finishes it)
                self._event("preempted", jobid=jobid, external_id=external_id, reason=reason)
                return
            self._finish(
                external_id,
                JobState.PREEMPTED,
                "preempted",
                jobid=jobid,
                reason=reason,
                log=log,
                then=then,
            )

    def cancelled(self, external_id: str) -> None:
        self._finish(external_id, JobState.CANCELLED, "cancelled")

    def _finish(self, external_id: str, state: JobState, event: str, **fields) -> None:
        with self._lock:
            job = self.jobs.get(external_id)
            if job is not None and job.open:
                self._untally(job)
                self._tally[state] += 1
                job.state, job.finished = state, self.clock()
                job.reason, job.log = fields.get("reason"), fields.get("log")
                fields["t"] = job.finished
                if self.cost is not None:
                    self.cost.finished(job)
                    usd = attempt_of(job).usd(job.finished)
                    if usd is not None:
                        fields["usd"] = round(usd, 6)
            self._event(event, external_id=external_id, **fields)

    def planned(self, per_rule: dict[str, int]) -> None:
        """The jobs the run's DAG will submit, per rule (`cfw run` shows their progress)."""
        with self._lock:
            if per_rule:
                self.run_log.info.extra["planned"] = dict(per_rule)
                self.run_log.info.total = sum(per_rule.values())
                self._dirty = True

    def _event(self, event: str, **fields) -> None:
        self.run_log.job_event(event, **fields)
        self._dirty = True

    def _untally(self, job: TrackedJob) -> None:
        if job.open:
            self._tally["open"] -= 1
        elif job.state in self._tally:
            self._tally[job.state] -= 1

    # -- views ------------------------------------------------------------------------------
    def counts(self) -> Counts:
        with self._lock:
            tally = self._tally
            return Counts(
                done=tally[JobState.SUCCEEDED],
                running=tally["open"],
                failed=tally[JobState.FAILED],
                cancelled=tally[JobState.CANCELLED],
            )

    def open_ids(self) -> list[str]:
        with self._lock:
            return sorted(ext for ext, job in self.jobs.items() if job.open)

    def spent_usd(self) -> float:
        """The jobs' estimated cost so far: finished attempts plus running ones (0.0
        without prices)."""
        if self.cost is None:
            return 0.0
        with self._lock:
            return self.cost.spent(self.clock())

    # -- records ----------------------------------------------------------------------------
    def flush(self, force: bool = False) -> None:
        """Write what changed, at most every ``flush_seconds`` unless forced."""
        with self._lock:
            now = self.clock()
            if not (self._dirty or force) or (
                not force and now - self._last_flush < self.flush_seconds
            ):
                return
            counts = self.counts()
            self.run_log.counts(done=counts.done, running=counts.running, failed=counts.failed)
            if self.cost is not None:
                self.run_log.info.cost = self.cost.summary(self.jobs.values(), now)
            self.run_log.flush()
            self._last_flush, self._dirty = now, False

    def finish(self, outcome: str) -> None:
        with self._lock:
            self.flush(force=True)
            self.run_log.finish(outcome)

"""A preemption is not a failure: resubmit a preempted spot job, invisibly to Snakemake.

A kind's backend reports a job whose machine was reclaimed as ``JobState.PREEMPTED`` (each
by its service's own signal: a pod's DisruptionTarget, Batch's VM-loss exit codes, TES
PREEMPTED, Tibanna's spot_failure, an Azure low-priority node preempted). The executor
hands it here: a preemptible job is resubmitted on spot up to N times (Snakemake's
``--preemptible-retries``, else the environment's ``spot.retries``, default 3), then once
on demand (``spot.fallback: on-demand``, the default) where the environment has on-demand
capacity that fits the job, else it fails naming its preemptions. Snakemake sees one job
throughout, and its ``--retries`` budget is untouched. A failure that is not a preemption
never comes here, and a job that was not on spot is not resubmitted.

Where the service retries a preempted job on spot itself (google-batch's maxRetryCount),
``JobSpec.spot_retries`` gives it the retries left and its PREEMPTED status says how many
preemptions it saw (``JobStatus.preemptions``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cfw.backends.base import EnvContext, JobSpec, JobStatus
from cfw.backends.kind import Kind
from cfw.core.errors import CfwError

ON_DEMAND = "on-demand"
FAIL = "fail"
_TIMES = {1: "once", 2: "twice"}


def times(n: int) -> str:
    return _TIMES.get(n, f"{n} times")


@dataclass(frozen=True)
class SpotPolicy:
    """How many times a preempted job goes back to spot, and what comes after."""

    retries: int = 3
    fallback: str = ON_DEMAND

    @classmethod
    def of(cls, config: Any, preemptible_retries: int | None = None) -> SpotPolicy:
        """Snakemake's --preemptible-retries if given, else the environment's ``spot:``."""
        spot = getattr(config, "spot", None)
        retries = spot.retries if spot is not None else 3
        fallback = spot.fallback if spot is not None else ON_DEMAND
        if preemptible_retries is not None:
            retries = max(0, int(preemptible_retries))
        return cls(retries=retries, fallback=fallback)

    def spec(self, spec: JobSpec) -> JobSpec:
        """A first submission: the spot retries its service may make itself."""
        if not spec.preemptible:
            return spec
        return dataclasses.replace(spec, spot_retries=self.retries)

    def plan(self, spec: JobSpec, kind: Kind, ctx: EnvContext) -> dict[str, Any] | None:
        """What `--explain` says of a job: None for a job that does not run on spot."""
        if not kind.on_spot(spec, ctx):
            return None
        then = ON_DEMAND if self.on_demand_problem(spec, kind, ctx) is None else FAIL
        return {"spot_attempts": self.retries + 1, "spot_retries": self.retries, "then": then}

    def on_demand_problem(self, spec: JobSpec, kind: Kind, ctx: EnvContext) -> str | None:
        """Why the job cannot fall back to on-demand capacity; None: it can."""
        if self.fallback == FAIL:
            return "spot.fallback is fail"
        return kind.on_demand_problem(spec, ctx)


@dataclass
class Preempted:
    """What became of a preempted submission: its successor, or why the job fails."""

    spec: JobSpec | None  # the resubmission; None: the job fails
    preemptions: int  # the job's preemptions so far (this attempt of Snakemake's)
    message: str  # "job 12 (align) preempted twice; now on demand"


@dataclass
class SpotRetries:
    """Decides and submits the resubmissions of one run's preempted jobs."""

    policy: SpotPolicy
    kind: Kind
    ctx: EnvContext
    preemptions: dict[tuple[int, int], int] = field(default_factory=dict)  # (jobid, attempt)
    fallbacks: int = 0

    def after(self, spec: JobSpec, status: JobStatus) -> Preempted:
        """The next submission of a job reported PREEMPTED (or None: it fails)."""
        key = (spec.jobid, spec.attempt)
        count = self.preemptions.get(key, 0) + max(1, status.preemptions)
        self.preemptions[key] = count
        what = f"job {spec.jobid} ({spec.rule}) preempted {times(count)}"
        why = status.reason or "its machine was reclaimed"
        if not spec.preemptible or not self.kind.on_spot(spec, self.ctx):
            where = "the last time on demand" if spec.preempted else "not on spot capacity"
            return Preempted(None, count, f"{what}, {where}; it fails: {why}")
        if count <= self.policy.retries:
            left = self.policy.retries - count
            again = dataclasses.replace(spec, preempted=spec.preempted + 1, spot_retries=left)
            return Preempted(again, count, f"{what}; again on spot ({left} spot retries left)")
        problem = self.policy.on_demand_problem(spec, self.kind, self.ctx)
        if problem is None:
            again = dataclasses.replace(
                spec, preempted=spec.preempted + 1, preemptible=False, spot_retries=None
            )
            self.fallbacks += 1
            return Preempted(again, count, f"{what}; now on demand")
        return Preempted(
            None,
            count,
            f"{what}, {self.policy.retries} spot retries used up and no on-demand fallback "
            f"({problem}); it fails: {why}",
        )

    def resubmit(
        self,
        again: JobSpec,
        submit: Callable[[JobSpec, dict[str, Any], Mapping[str, str]], str],
        secrets: Mapping[str, str],
    ) -> str:
        """Translate and submit the resubmission; return its external id."""
        payload = self.kind.translate(again, self.ctx)
        return submit(again, payload, secrets)

    def summary(self) -> dict[str, int]:
        return {
            "preemptions": sum(self.preemptions.values()),
            "jobs_preempted": len(self.preemptions),
            "on_demand_fallbacks": self.fallbacks,
        }


class SpotMixin:
    """The executor's side: a PREEMPTED job is resubmitted here, and said (CfwExecutor)."""

    @property
    def spot(self) -> SpotRetries:
        retries = getattr(self, "_spot", None)
        if retries is None:
            remote = self.workflow.remote_execution_settings
            policy = SpotPolicy.of(self.ctx.config, getattr(remote, "preemptible_retries", None))
            retries = self._spot = SpotRetries(policy, self.kind, self.ctx)
        return retries

    def spot_preempted(self, info: Any, spec: JobSpec, status: JobStatus, log: str | None):
        """The successor of a preempted job (a SubmittedJobInfo to keep watching), or None
        and why the job fails."""
        from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

        outcome = self.spot.after(spec, status)
        self.tracker.preempted(
            info.external_jobid,
            spec.jobid,
            status.reason or "preempted",
            log,
            then=None if outcome.spec is None else capacity(outcome.spec),
        )
        self.tracker.run_log.info.extra["spot"] = self.spot.summary()
        if outcome.spec is None:
            self.logger.warning(f"cfw: {outcome.message}")
            return None, outcome.message
        self.logger.info(f"cfw: {outcome.message}")
        try:
            external_id = self.spot.resubmit(outcome.spec, self.backend.submit, self.envvars())
        except CfwError as exc:
            return None, f"{outcome.message}, but the resubmission failed: {exc}"
        self.specs[external_id] = outcome.spec
        self.tracker.submitted(outcome.spec, external_id)
        return SubmittedJobInfo(info.job, external_jobid=external_id), outcome.message


def capacity(spec: JobSpec) -> str:
    return "spot" if spec.preemptible else ON_DEMAND


def summary_said(summary: Mapping[str, int] | None) -> str:
    """The end of `cfw run`: '; 3 spot preemptions (1 job), 1 resubmitted on demand'."""
    if not summary or not summary.get("preemptions"):
        return ""
    jobs = summary.get("jobs_preempted", 0)
    fallbacks = summary.get("on_demand_fallbacks", 0)
    return (
        f"; {summary['preemptions']} spot preemption(s) of {jobs} job(s), each resubmitted "
        f"by cfw; {fallbacks} job(s) then ran on demand"
    )

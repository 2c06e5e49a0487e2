"""The executor's side of a run's cost: prices at submission, and the budget that stops it.

Mixed into :class:`~cfw.executor.executor.CfwExecutor`. The budget is `cfw run --budget`
(the ``--cfw-budget`` executor setting), else the environment's ``budget_usd``. When the
jobs' running estimate (finished attempts plus running ones so far) passes it, no new job
is submitted: a job Snakemake hands over is reported failed without being submitted, so
Snakemake stops scheduling and waits for the running jobs, which finish, or, with
``budget_action: cancel``, are cancelled. The run's outcome is then ``budget``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from cfw.core.prices import format_usd
from cfw.executor.cost import Budget, RunCost, fixed_usd_per_hour, job_pricer
from cfw.executor.override import override


def run_cost(kind, ctx, budget_usd: float | None) -> RunCost:
    """The cost keeper of a run on ``ctx`` (raises UserError for a bad price override)."""
    flat = override()
    limit = budget_usd if budget_usd is not None else ctx.config.budget_usd
    budget = Budget(float(limit), ctx.config.budget_action) if limit else None
    return RunCost(
        job_pricer(kind, ctx, flat),
        fixed_usd_per_hour(kind, ctx.config, flat),
        time.time(),
        budget,
    )


class BudgetMixin:
    """Budget checks of CfwExecutor (which supplies tracker, backend, logger, report_*)."""

    tracker: Any
    backend: Any
    logger: Any
    _budget_lock = threading.Lock()

    @property
    def budget(self) -> Budget | None:
        cost = getattr(getattr(self, "tracker", None), "cost", None)
        return cost.budget if cost is not None else None

    def budget_refuses(self, job: JobExecutorInterface) -> bool:
        """Whether the budget stops this job's submission (said to Snakemake if so)."""
        budget = self.budget
        if budget is None:
            return False
        self.check_budget()
        if not budget.passed:
            return False
        budget.not_submitted += 1
        self.report_job_error(
            SubmittedJobInfo(job),
            msg=f"cfw: not submitted: the run passed its budget of {format_usd(budget.usd)} "
            "(estimate). ",
        )
        return True

    def check_budget(self) -> None:
        """Compare the running estimate with the budget; the first time it passes, say so
        and, with budget_action cancel, cancel the running jobs."""
        budget = self.budget
        if budget is None:
            return
        with self._budget_lock:
            spent = self.tracker.spent_usd()
            if not budget.check(spent):
                return
        cancel = budget.action == "cancel"
        self.logger.warning(
            f"cfw: the run's estimated job cost, {format_usd(spent)}, passed its budget of "
            f"{format_usd(budget.usd)}: no new job is submitted; "
            + ("the running jobs are cancelled" if cancel else "the running jobs finish")
        )
        if cancel:
            ids = self.tracker.open_ids()
            if ids:
                self.backend.cancel(ids)
                for ext in ids:
                    self.tracker.cancelled(ext)
                budget.cancelled += len(ids)
                self._budget_cancelled.update(ids)
        self.tracker.flush(force=True)

    @property
    def _budget_cancelled(self) -> set[str]:
        if not hasattr(self, "_cancelled_by_budget"):
            self._cancelled_by_budget: set[str] = set()
        return self._cancelled_by_budget

    def drop_budget_cancelled(self, active_jobs: list[SubmittedJobInfo]) -> list[SubmittedJobInfo]:
        """Report the jobs the budget cancelled as failed; the others stay active."""
        cancelled = self._budget_cancelled
        if not cancelled:
            return active_jobs
        budget = self.budget
        keep = []
        for info in active_jobs:
            if info.external_jobid not in cancelled:
                keep.append(info)
                continue
            self.report_job_error(
                info,
                msg=f"cfw: job {info.external_jobid} cancelled: the run passed its budget of "
                f"{format_usd(budget.usd if budget else None)} (estimate). ",
            )
        return keep

    def budget_outcome(self) -> str | None:
        """``budget`` when the budget stopped a job (not submitted, or cancelled)."""
        budget = self.budget
        return "budget" if budget is not None and budget.stopped_something else None

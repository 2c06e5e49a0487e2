"""cfw's Snakemake executor (a RemoteExecutor): DAG job -> JobSpec -> backend submission."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from collections.abc import AsyncGenerator, Callable
from functools import cached_property
from pathlib import Path

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings
from snakemake_interface_executor_plugins.utils import format_cli_arg

from cfw.backends.base import Backend, JobSpec, JobState, ignored
from cfw.backends.registry import Resolved
from cfw.core.errors import CfwError, UserError
from cfw.core.records import RunLog, new_run_id, record_startup_error
from cfw.core.state import EnvState
from cfw.executor.budget import BudgetMixin, run_cost
from cfw.executor.command import RunConstants, format_job_exec
from cfw.executor.diagnose import output_hint, planned_jobs
from cfw.executor.heartbeats import start_heartbeats
from cfw.executor.pending import PendingMixin
from cfw.executor.prefix import checkpoint_staging, plugin_install, retrieve_checkpoint_outputs
from cfw.executor.retry import SpotMixin
from cfw.executor.session import open_context, pick_environment
from cfw.executor.spec import spec_from_job
from cfw.executor.tracker import Counts, RunTracker

COMMON_SETTINGS = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=True,
    job_deploy_sources=True,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # storage credentials reach jobs through the backend (a secret where it has one),
    # never on the command line
    pass_envvar_declarations_to_cmd=False,
    # Snakemake's own auto-deploy installs every registered storage plugin, cfw's local one
    # (not on PyPI) too; cfw installs just the one a job needs, and only on the stock
    # Snakemake image (see CfwExecutor._storage_plugin_install)
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
)


PROGRESS_SECONDS = 1.0  # the "jobs N done, M running" line, at most this often while submitting


class CfwExecutor(SpotMixin, PendingMixin, BudgetMixin, RemoteExecutor):
    # records a shared environment another directory brought up; set by the plugin shim
    # (the orchestration runs Terraform, which this layer does not)
    attach: Callable[[Resolved], object] | None = None

    def __post_init__(self) -> None:
        settings = self.workflow.executor_settings
        self.project = Path.cwd()
        name, why = pick_environment(self.project, getattr(settings, "env", None))
        self.run_id = getattr(settings, "run_id", None) or new_run_id()
        try:
            self.kind, self.ctx = open_context(
                self.project, name, self.run_id, attach=type(self).attach
            )
            self.backend: Backend = self.kind.backend(self.ctx)
            cost = run_cost(self.kind, self.ctx, getattr(settings, "budget", None))
        except CfwError as exc:
            from snakemake_interface_common.exceptions import WorkflowError

            # `cfw run` reads this back and exits as the error says (2 for a user mistake)
            record_startup_error(EnvState(self.project, name).runs_dir / self.run_id, exc)
            raise WorkflowError(f"cfw: {exc}") from None
        self.tracker = RunTracker(RunLog(self.ctx.run_dir, name, self.run_id), cost=cost)
        self.specs: dict[str, JobSpec] = {}
        self.ignored_said: set[str] = set()  # rules told what their kind does not honour
        self.cancelled = False
        self._last_counts: Counts | None = None
        self._last_said = 0.0  # when the counts line was last printed (time.monotonic)
        self.interrupted = False  # a Ctrl-C (or SIGTERM), not an error, stopped the run
        self.tracker.planned(planned_jobs(self.workflow))
        # before the first job: the guard's sign that this run's runner is alive
        self.heartbeats = start_heartbeats(
            self.kind,
            self.ctx,
            os.environ,
            lambda: self.tracker.counts().running,
            self.logger.warning,
        )
        if not getattr(settings, "run_id", None):  # `cfw run` has said it already
            self.logger.info(
                f"cfw: running on environment {name!r} (kind {self.kind.name}; {why}), "
                f"run {self.run_id}"
            )

    @property
    def common_settings(self) -> CommonSettings:
        return COMMON_SETTINGS

    # -- per-run constants (executor/command.py): built on the first job, not on every one --
    @cached_property
    def run_constants(self) -> RunConstants:
        return RunConstants(self)

    def envvars(self) -> dict[str, str]:
        return dict(self.run_constants.envvars)

    def format_job_exec(self, job: JobExecutorInterface) -> str:
        return format_job_exec(self, self.run_constants, job)

    # -- submission -------------------------------------------------------------------------
    def job_spec(self, job: JobExecutorInterface) -> JobSpec:
        remote = self.workflow.remote_execution_settings
        rule_name = job.name if job.is_group() else job.rule.name
        spec = spec_from_job(
            job,
            run_id=self.run_id,
            command=self.format_job_exec(job),
            image=remote.container_image or self.kind.default_image(self.ctx.config),
            env_names=list(self.envvars()),
            preemptible_rule=bool(remote.preemptible_rules.is_preemptible(rule_name)),
            # measured by Snakemake's scheduler just before it hands us the job
            input_sizes=getattr(self.workflow.scheduler, "_input_sizes", None),
        )
        return self.spot.policy.spec(spec)  # the spot retries a service makes itself

    def run_job(self, job: JobExecutorInterface) -> None:
        if self.budget_refuses(job):
            return
        try:
            spec = self.job_spec(job)
        except UserError as exc:  # a rule's resources: the run exits 2 with this one line
            record_startup_error(self.ctx.run_dir, exc)
            self.report_job_error(SubmittedJobInfo(job), msg=f"cfw: {exc}")
            return
        self._say_ignored(spec)
        try:
            payload = self.kind.submission(spec, self.ctx)
            external_id = self.backend.submit(spec, payload, self.envvars())
        except CfwError as exc:
            self.report_job_error(SubmittedJobInfo(job), msg=f"cfw: submission failed: {exc}")
            return
        except Exception as exc:  # the service's own error (its environment gone, say): one line
            text = " ".join(str(exc).split())[:300]
            self.report_job_error(
                SubmittedJobInfo(job),
                msg=f"cfw: submission failed: {type(exc).__name__}: {text} (is {self.ctx.name} "
                "still up? `cfw status` says)",
            )
            return
        self.logger.debug(f"cfw: submitted {external_id}: {spec.command}")
        self.specs[external_id] = spec
        self.tracker.submitted(spec, external_id)
        self.report_job_submission(SubmittedJobInfo(job, external_jobid=external_id))
        self._progress()

    def _say_ignored(self, spec: JobSpec) -> None:
        """Once per rule: the resources this kind runs the job without."""
        if spec.rule in self.ignored_said:
            return
        self.ignored_said.add(spec.rule)
        skipped = ignored(spec, self.kind.capabilities)
        if skipped:
            self.logger.info(
                f"cfw: rule {spec.rule}: {self.kind.label} jobs run without "
                f"{' and '.join(skipped)} (kind {self.kind.name} does not honour it)"
            )

    # -- status -----------------------------------------------------------------------------
    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        active_jobs = self.drop_budget_cancelled(active_jobs)
        if not active_jobs:
            return
        ids = [j.external_jobid for j in active_jobs]
        async with self.status_rate_limiter:
            statuses = self.backend.poll(ids)
        statuses = self.pending_timeouts(statuses)  # capacity that never came (pending.py)
        for info in active_jobs:
            status = statuses.get(info.external_jobid)
            if status is None or not status.state.finished:
                if status is not None:
                    self.tracker.seen(info.external_jobid, status.state)
                yield info
                continue
            spec = self.specs.get(info.external_jobid)
            why = None
            if status.state == JobState.PREEMPTED and spec is not None:
                # not a failure: resubmitted on spot or on demand (executor/retry.py)
                path = self._save_log(info, spec)
                successor, why = self.spot_preempted(info, spec, status, path and str(path))
                if successor is not None:
                    yield successor
                    continue
            if status.state == JobState.SUCCEEDED:
                await retrieve_checkpoint_outputs(info.job)
                self.tracker.succeeded(info.external_jobid, info.job.jobid)
                self.report_job_success(info)
            elif self.cancelled or status.state == JobState.CANCELLED:
                # cancelled by this run (Ctrl-C, a budget): not an error of the job
                self._save_log(info, spec)
                self.tracker.cancelled(info.external_jobid)
            else:
                path = self._save_log(info, spec)
                reason = why or status.reason or status.state.value
                self.tracker.failed(
                    info.external_jobid,
                    info.job.jobid,
                    reason,
                    str(path) if path else None,
                    hint=output_hint(
                        self.backend,
                        info.external_jobid,
                        info.job,
                        path,
                        self.workflow.storage_settings.default_storage_prefix,
                    ),
                )
                where = f"; log saved to {path}" if path else ""
                self.report_job_error(
                    info, msg=f"cfw: job {info.external_jobid} failed: {reason}{where}. "
                )
                self.logger.error(
                    f"cfw: log of failed job {info.job.jobid} "
                    f"({spec.rule if spec else '?'}): {path}"
                )
        self.check_budget()
        self._progress()

    def get_job_args(self, job: JobExecutorInterface, **kwargs) -> str:
        """Snakemake's, without --unneeded-temp-files: a job told so does not store those
        temp outputs, and Snakemake then finds them missing in storage (a rule with
        temp(expand(...)) outputs of which one is used); stored, they are removed as temp
        files once no job needs them, as without a storage."""
        args = super().get_job_args(job, **kwargs)
        unneeded = list(self.workflow.dag.get_unneeded_temp_files(job))
        if unneeded:
            args = args.replace(format_cli_arg("--unneeded-temp-files", unneeded), "")
        return args

    def get_job_exec_prefix(self, job: JobExecutorInterface) -> str:
        """Deploy the storage plugin where the image lacks it, then stage the checkpoint
        outputs a job's input functions may read (see prefix.py)."""
        steps = [
            plugin_install(
                self.workflow.remote_execution_settings.container_image or "",
                self.workflow.storage_settings.default_storage_provider,
                self.kind.capabilities.containers,
            ),
            checkpoint_staging(self.workflow, job),
        ]
        return " && ".join(step for step in steps if step)

    async def sleep(self) -> None:
        # the status thread starts before __post_init__ has made the backend
        backend = getattr(self, "backend", None)
        if backend is None:
            await asyncio.sleep(0.05)
            return
        waiter = getattr(backend, "wait_for_change", None)
        if waiter is None:
            await super().sleep()
        else:
            await waiter(float(self.next_seconds_between_status_checks))

    def _save_log(self, info: SubmittedJobInfo, spec: JobSpec | None) -> Path | None:
        try:
            text = self.backend.logs(info.external_jobid)
        except Exception as exc:  # a log we cannot fetch must not hide the failure
            text = f"cfw could not fetch this job's log: {exc}\n"
        name = spec.name if spec else info.external_jobid
        tag = spec.attempt_tag if spec else info.job.attempt
        path = self.tracker.run_log.logs_dir / f"{name}-a{tag}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    def _progress(self) -> None:
        counts = self.tracker.counts()
        self.tracker.flush()
        last, now = self._last_counts, time.monotonic()
        if counts == last:
            return
        # a job that ended is said at once; a burst of submissions once a second, not per job
        ended = last is None or (counts.done, counts.failed) != (last.done, last.failed)
        if not ended and now - self._last_said < PROGRESS_SECONDS:
            return
        self._last_counts, self._last_said = counts, now
        self.logger.info(
            f"cfw: jobs {counts.done} done, {counts.running} running, {counts.failed} failed"
        )

    # -- cancel and shutdown ----------------------------------------------------------------
    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        self.cancelled = True
        # Snakemake cancels from its except clause: a KeyboardInterrupt is the user's Ctrl-C
        # (or SIGTERM), any other exception an error of the run
        self.interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt | SystemExit)
        ids = sorted(
            {j.external_jobid for j in active_jobs if j.external_jobid}
            | set(self.tracker.open_ids())
        )
        if ids:
            self.logger.info(f"cfw: cancelling {len(ids)} submitted job(s)")
            self.backend.cancel(ids)
            specs = {ext: self.specs.get(ext) for ext in ids}
            for job in active_jobs:
                if job.external_jobid in specs:  # its output so far stays in the records
                    self._save_log(job, specs[job.external_jobid])
            for ext in ids:
                self.tracker.cancelled(ext)

    def shutdown(self) -> None:
        super().shutdown()
        try:
            self.backend.close()
        except Exception:  # closing must not mask the run's own outcome
            self.logger.warning("cfw: closing the backend failed:\n" + traceback.format_exc())
        failed = self.tracker.counts().failed
        outcome = self.budget_outcome() or (
            "interrupted"
            if self.interrupted
            else "failure"
            if failed or self.cancelled
            else "success"
        )
        self.tracker.finish(outcome)
        if self.heartbeats is not None:
            self.heartbeats.stop()

"""cfw's Snakemake executor (a RemoteExecutor): DAG job -> JobSpec -> backend submission."""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings
from snakemake_interface_executor_plugins.utils import join_cli_args

from cfw.backends.base import Backend, JobSpec, JobState, ignored
from cfw.backends.registry import Resolved
from cfw.core.errors import CfwError
from cfw.core.records import RunLog, new_run_id, record_startup_error
from cfw.core.staging import job_stage_command
from cfw.core.state import EnvState
from cfw.executor.session import open_context, pick_environment
from cfw.executor.spec import spec_from_job


def _has_input_function(job: JobExecutorInterface) -> bool:
    rule = getattr(job, "rule", None)
    return any(callable(item) for item in getattr(rule, "input", ()) or ())


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


STOCK_IMAGE = "snakemake/snakemake:"


def storage_plugin_install_command(provider: str) -> str:
    """``pip install`` of PROVIDER's storage plugin, at the version installed here."""
    from importlib.metadata import PackageNotFoundError, version

    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    package = StoragePluginRegistry().get_plugin_package_name(provider)
    try:
        pinned = f"{package}=={version(package)}"
    except PackageNotFoundError:
        pinned = package
    return (
        "python -m pip install --quiet --disable-pip-version-check --no-warn-script-location "
        f"--target .snakemake/pip-deployments {pinned}"
    )


class CfwExecutor(RemoteExecutor):
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
        except CfwError as exc:
            from snakemake_interface_common.exceptions import WorkflowError

            # `cfw run` reads this back and exits as the error says (2 for a user mistake)
            record_startup_error(EnvState(self.project, name).runs_dir / self.run_id, exc)
            raise WorkflowError(f"cfw: {exc}") from None
        self.run_log = RunLog(self.ctx.run_dir, name, self.run_id)
        self.specs: dict[str, JobSpec] = {}
        self.ignored_said: set[str] = set()  # rules told what their kind does not honour
        self.unfinished: set[str] = set()
        self.cancelled = False
        self.done = self.failed = 0
        self._last_counts: tuple[int, int, int] | None = None
        self.logger.info(
            f"cfw: running on environment {name!r} (kind {self.kind.name}; {why}), "
            f"run {self.run_id}"
        )

    @property
    def common_settings(self) -> CommonSettings:
        return COMMON_SETTINGS

    # -- submission -------------------------------------------------------------------------
    def job_spec(self, job: JobExecutorInterface) -> JobSpec:
        remote = self.workflow.remote_execution_settings
        rule_name = job.name if job.is_group() else job.rule.name
        return spec_from_job(
            job,
            run_id=self.run_id,
            command=self.format_job_exec(job),
            image=remote.container_image or self.kind.default_image(self.ctx.config),
            env_names=list(self.envvars()),
            preemptible_rule=bool(remote.preemptible_rules.is_preemptible(rule_name)),
            # measured by Snakemake's scheduler just before it hands us the job
            input_sizes=getattr(self.workflow.scheduler, "_input_sizes", None),
        )

    def run_job(self, job: JobExecutorInterface) -> None:
        spec = self.job_spec(job)
        self._say_ignored(spec)
        try:
            payload = self.kind.translate(spec, self.ctx)
            external_id = self.backend.submit(spec, payload, self.envvars())
        except CfwError as exc:
            self.report_job_error(SubmittedJobInfo(job), msg=f"cfw: submission failed: {exc}")
            return
        self.logger.debug(f"cfw: submitted {external_id}: {spec.command}")
        self.specs[external_id] = spec
        self.unfinished.add(external_id)
        self.run_log.job_event(
            "submitted",
            jobid=job.jobid,
            rule=spec.rule,
            external_id=external_id,
            attempt=spec.attempt,
        )
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
        if not active_jobs:
            return
        ids = [j.external_jobid for j in active_jobs]
        async with self.status_rate_limiter:
            statuses = self.backend.poll(ids)
        for info in active_jobs:
            status = statuses.get(info.external_jobid)
            if status is None or not status.state.finished:
                yield info
                continue
            spec = self.specs.get(info.external_jobid)
            self.unfinished.discard(info.external_jobid)
            if status.state == JobState.SUCCEEDED:
                await self._retrieve_checkpoint_outputs(info.job)
                self.done += 1
                self.run_log.job_event(
                    "succeeded", jobid=info.job.jobid, external_id=info.external_jobid
                )
                self.report_job_success(info)
            else:
                self.failed += 1
                path = self._save_log(info, spec)
                reason = status.reason or status.state.value
                self.run_log.job_event(
                    "failed",
                    jobid=info.job.jobid,
                    external_id=info.external_jobid,
                    reason=reason,
                    log=str(path) if path else None,
                )
                where = f"; log saved to {path}" if path else ""
                self.report_job_error(
                    info, msg=f"cfw: job {info.external_jobid} failed: {reason}{where}. "
                )
                self.logger.error(
                    f"cfw: log of failed job {info.job.jobid} "
                    f"({spec.rule if spec else '?'}): {path}"
                )
        self._progress()

    def get_job_exec_prefix(self, job: JobExecutorInterface) -> str:
        """Deploy the storage plugin where the image lacks it, then stage the checkpoint
        outputs a job's input functions may read (see stage.py)."""
        steps = [self._storage_plugin_install(), self._checkpoint_staging(job)]
        return " && ".join(step for step in steps if step)

    def _storage_plugin_install(self) -> str:
        """Snakemake's stock image has Snakemake but no storage plugin: a job on it installs
        the default storage's plugin, pinned to the version here, where Snakemake looks
        (.snakemake/pip-deployments) — only that one plugin, unlike Snakemake's own
        auto-deploy, which would try to install every plugin registered here, cfw's too."""
        image = self.workflow.remote_execution_settings.container_image or ""
        provider = self.workflow.storage_settings.default_storage_provider
        if not (self.kind.capabilities.containers and image.startswith(STOCK_IMAGE) and provider):
            return ""
        return storage_plugin_install_command(provider)

    def _checkpoint_staging(self, job: JobExecutorInterface) -> str:
        queries = self._checkpoint_queries(job)
        if not queries:
            return ""
        factory = self.workflow.spawned_job_args_factory
        storage = join_cli_args(
            [
                factory.get_default_storage_provider_args(),
                *factory.get_storage_provider_args(),
                factory.workflow_property_to_arg(
                    "storage_settings.remote_job_local_storage_prefix",
                    flag="--local-storage-prefix",
                    base64_encode=True,
                ),
            ]
        )
        return job_stage_command(queries, storage)

    def _checkpoint_queries(self, job: JobExecutorInterface) -> list[str]:
        """Storage queries of the checkpoint outputs created so far, for jobs whose inputs
        come from functions (only those can read a checkpoint's output; files found inside a
        checkpoint directory have no producing job, so the DAG does not link them)."""
        jobs = list(job.jobs) if job.is_group() else [job]
        if not any(_has_input_function(j) for j in jobs):
            return []
        created = getattr(getattr(self.workflow, "checkpoints", None), "created_output", ())
        return sorted({f.storage_object.query for f in created if getattr(f, "is_storage", False)})

    async def _retrieve_checkpoint_outputs(self, job: JobExecutorInterface) -> None:
        """Bring a checkpoint's outputs from storage into this process.

        Without a shared filesystem the checkpoint's outputs exist only in the storage,
        but Snakemake re-evaluates the DAG here, with input functions that read them
        (glob_wildcards over a checkpoint directory, say). Snakemake does not fetch them
        for remote executors, so the executor does, before it reports success.
        """
        for single in job.jobs if job.is_group() else [job]:
            if getattr(single, "is_checkpoint", False):
                for output in single.output:
                    if getattr(output, "is_storage", False):
                        await output.retrieve_from_storage()

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
        path = self.run_log.logs_dir / f"{name}-a{info.job.attempt}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    def _progress(self) -> None:
        running = len(self.unfinished)  # active_jobs is emptied while a check is under way
        counts = (self.done, running, self.failed)
        if counts == self._last_counts:
            return
        self._last_counts = counts
        self.run_log.counts(done=self.done, running=running, failed=self.failed)
        self.logger.info(f"cfw: jobs {self.done} done, {running} running, {self.failed} failed")

    # -- cancel and shutdown ----------------------------------------------------------------
    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        self.cancelled = True
        ids = sorted({j.external_jobid for j in active_jobs if j.external_jobid} | self.unfinished)
        if ids:
            self.logger.info(f"cfw: cancelling {len(ids)} submitted job(s)")
            self.backend.cancel(ids)
            for ext in ids:
                self.run_log.job_event("cancelled", external_id=ext)

    def shutdown(self) -> None:
        super().shutdown()
        try:
            self.backend.close()
        except Exception:  # closing must not mask the run's own outcome
            self.logger.warning("cfw: closing the backend failed:\n" + traceback.format_exc())
        outcome = "interrupted" if self.cancelled else "failure" if self.failed else "success"
        self.run_log.finish(outcome)

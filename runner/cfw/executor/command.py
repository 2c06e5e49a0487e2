"""A job's command line, with what is the same for every job of a run built once.

Snakemake's ``RealExecutor.format_job_exec`` rebuilds, for every job, the arguments every
spawned job shares (``general_args``: some forty settings turned back into flags; the
precommand; the environment variables and their declarations, through a new
``SpawnedJobArgsFactory`` each time). That is about 1-2 ms a job, most of cfw's time per
job in a 2,000-job explain. :class:`RunConstants` computes them on first use and keeps
them for the run; :func:`format_job_exec` assembles the command exactly as the plugin
interface does (tests/core/test_run_constants.py compares the two on every change).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.utils import format_cli_arg, join_cli_args


class RunConstants:
    """The job-independent parts of every job's command, computed once per run."""

    def __init__(self, executor: Any):
        self.executor = executor

    @cached_property
    def envvars(self) -> dict[str, str]:
        return dict(self.executor.workflow.spawned_job_args_factory.envvars())

    @cached_property
    def general_args(self) -> str:
        factory = self.executor.workflow.spawned_job_args_factory
        return factory.general_args(executor_common_settings=self.executor.common_settings)

    @cached_property
    def precommand(self) -> str:
        factory = self.executor.workflow.spawned_job_args_factory
        return factory.precommand(executor_common_settings=self.executor.common_settings)

    @cached_property
    def envvar_declarations(self) -> str:
        envvars = self.envvars
        if self.executor.common_settings.pass_envvar_declarations_to_cmd and envvars:
            defs = " ".join(f"{var}={value!r}" for var, value in envvars.items())
            return f"export {defs} &&"
        return ""

    @cached_property
    def tail(self) -> list[str]:
        """What follows the job's own arguments: the same for every job of the run."""
        ex = self.executor
        return [
            self.general_args,
            ex.additional_general_args(),
            format_cli_arg("--mode", ex.get_exec_mode().item_to_choice()),
            format_cli_arg(
                "--local-groupid",
                ex.workflow.group_settings.local_groupid,
                skip=ex.job_specific_local_groupid,
            ),
        ]


def format_job_exec(executor: Any, constants: RunConstants, job: JobExecutorInterface) -> str:
    """``RealExecutor.format_job_exec`` with the run's constants computed once."""
    prefix = executor.get_job_exec_prefix(job)
    if prefix:
        prefix += " &&"
    suffix = executor.get_job_exec_suffix(job)
    if suffix:
        suffix = f"&& {suffix}"
    precommand = constants.precommand
    if precommand:
        precommand += " &&"
    return join_cli_args(
        [
            prefix,
            constants.envvar_declarations,
            precommand,
            executor.get_python_executable(),
            "-m snakemake",
            format_cli_arg("--snakefile", executor.get_snakefile()),
            executor.get_job_args(job),
            *constants.tail,
            suffix,
        ]
    )

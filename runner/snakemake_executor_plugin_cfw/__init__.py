"""The shim Snakemake discovers for `--executor cfw`; the executor itself lives in cfw."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

from cfw.executor.executor import COMMON_SETTINGS as common_settings
from cfw.executor.executor import CfwExecutor

__all__ = ["Executor", "ExecutorSettings", "common_settings"]


def _attach(resolved):
    """A shared environment up elsewhere: read its remote state (imported only then)."""
    from cfw.orchestration.lifecycle import Lifecycle

    return Lifecycle(Path.cwd()).attach(resolved)


class Executor(CfwExecutor):
    attach = staticmethod(_attach)


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    # Snakemake builds --cfw-* flags from these annotations and needs typing.Optional
    env: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "cfw environment to run on (default: the one environment that is up, "
            "else local)",
            "env_var": False,
            "required": False,
        },
    )
    run_id: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "id of this run in cfw's records (set by `cfw run`)",
            "env_var": False,
            "required": False,
        },
    )
    budget: Optional[float] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "stop submitting jobs when the run's estimated job cost passes this many "
            "US dollars (default: the environment's budget_usd)",
            "env_var": False,
            "required": False,
        },
    )

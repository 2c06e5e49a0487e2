"""Imported once by the local backend's forkserver, so every forked job starts warm.

Besides Snakemake itself, Snakemake's plugin registries are filled here: each one imports
every installed plugin of its type (the S3, GCS and Azure storage plugins import their
cloud SDKs), which would otherwise happen again in every job's every Snakemake.
"""

import snakemake.cli  # noqa: F401
from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry
from snakemake_interface_report_plugins.registry import ReportPluginRegistry
from snakemake_interface_scheduler_plugins.registry import SchedulerPluginRegistry
from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

import cfw.core.staging  # noqa: F401

for _registry in (
    StoragePluginRegistry,
    ExecutorPluginRegistry,
    LoggerPluginRegistry,
    ReportPluginRegistry,
    SchedulerPluginRegistry,
):
    _registry()

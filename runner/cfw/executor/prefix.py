"""What a job's command does before its Snakemake: install the storage plugin where the
job image lacks it, and stage the checkpoint outputs its input functions may read."""

from __future__ import annotations

from functools import cache
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.utils import join_cli_args

from cfw.core.staging import job_stage_command

STOCK_IMAGE = "snakemake/snakemake:"


# the storage plugins cfw's jobs use, at versions known to work with the Snakemake of the
# stock image (tested here); pinned when the plugin is not installed on this machine
KNOWN_COMPATIBLE = {
    "snakemake-storage-plugin-s3": "0.3.6",
    "snakemake-storage-plugin-gcs": "1.1.4",
    "snakemake-storage-plugin-azure": "0.4.4",
}


def pinned_plugin(package: str) -> str:
    """PACKAGE==the version installed here, else a known compatible one; a plugin cfw
    knows nothing about stays as it is (pip picks)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        known = KNOWN_COMPATIBLE.get(package)
        return f"{package}=={known}" if known else package


@cache
def storage_plugin_install_command(provider: str) -> str:
    """``pip install`` of PROVIDER's storage plugin, at the version installed here (once
    per run: the plugin registry and package metadata are read only the first time)."""
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    package = StoragePluginRegistry().get_plugin_package_name(provider)
    pinned = pinned_plugin(package)
    return (
        "python -m pip install --quiet --disable-pip-version-check --no-warn-script-location "
        f"--target .snakemake/pip-deployments {pinned}"
    )


def plugin_install(image: str, provider: str | None, containers: bool) -> str:
    """Snakemake's stock image has Snakemake but no storage plugin: a job on it installs
    the default storage's plugin, pinned to the version here, where Snakemake looks
    (.snakemake/pip-deployments) — only that one plugin, unlike Snakemake's own
    auto-deploy, which would try to install every plugin registered here, cfw's too."""
    if not (containers and image.startswith(STOCK_IMAGE) and provider):
        return ""
    return storage_plugin_install_command(provider)


def _has_input_function(job: JobExecutorInterface) -> bool:
    rule = getattr(job, "rule", None)
    return any(callable(item) for item in getattr(rule, "input", ()) or ())


def checkpoint_queries(workflow: Any, job: JobExecutorInterface) -> list[str]:
    """Storage queries of the checkpoint outputs created so far, for jobs whose inputs
    come from functions (only those can read a checkpoint's output; files found inside a
    checkpoint directory have no producing job, so the DAG does not link them)."""
    jobs = list(job.jobs) if job.is_group() else [job]
    if not any(_has_input_function(j) for j in jobs):
        return []
    created = getattr(getattr(workflow, "checkpoints", None), "created_output", ())
    return sorted({f.storage_object.query for f in created if getattr(f, "is_storage", False)})


def checkpoint_staging(workflow: Any, job: JobExecutorInterface) -> str:
    queries = checkpoint_queries(workflow, job)
    if not queries:
        return ""
    factory = workflow.spawned_job_args_factory
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


async def retrieve_checkpoint_outputs(job: JobExecutorInterface) -> None:
    """Bring a checkpoint's outputs from storage into this process.

    Without a shared filesystem the checkpoint's outputs exist only in the storage, but
    Snakemake re-evaluates the DAG here, with input functions that read them
    (glob_wildcards over a checkpoint directory, say). Snakemake does not fetch them for
    remote executors, so the executor does, before it reports success.
    """
    for single in job.jobs if job.is_group() else [job]:
        if getattr(single, "is_checkpoint", False):
            for output in single.output:
                if getattr(output, "is_storage", False):
                    await output.retrieve_from_storage()

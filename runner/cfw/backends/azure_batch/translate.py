"""JobSpec -> an Azure Batch task on the run's job for the pool that fits. Pure.

The task is built from the azure-batch SDK's model classes and serialised exactly as the
service receives it (the body of ``POST {account}/jobs/{jobId}/tasks``). Values that only
exist at submit time are placeholders: environment settings that carry secrets
(``<env:NAME>``) and SAS tokens (``<sas:...>``); ``submit`` fills them in.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import timedelta
from typing import Any

from cfw.backends._google import gpus as google_gpus
from cfw.backends.azure_batch.config import AzureBatchConfig, PoolConfig
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.sdk import require
from cfw.core.errors import UserError

models = require("azure.batch.models", "azure")
model_base = require("azure.batch._utils.model_base", "azure")  # the SDK's own JSON encoder

SAS_WRITE = "<sas:write>"  # a write-only container SAS minted per task at submit
SAS_READ = "<sas:read>"
TASK_RETENTION = timedelta(days=1)


def env_placeholder(name: str) -> str:
    return f"<env:{name}>"


def batch_id(*parts: Any, limit: int = 64) -> str:
    """A Batch id: letters, digits, '-' and '_', at most 64 characters."""
    raw = "-".join(str(p) for p in parts if str(p))
    return re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")[:limit].rstrip("-") or "x"


def job_id(run_id: str, pool: PoolConfig) -> str:
    return batch_id("cfw", run_id, pool.pool_id)


def task_id(spec: JobSpec) -> str:
    suffix = f"-a{spec.attempt_tag}"
    return batch_id(spec.jobid, spec.rule, limit=64 - len(suffix)) + suffix


def _matches_type(pool: PoolConfig, machine_type: str) -> bool:
    size = pool.vm_size.lower()
    want = machine_type.lower()
    return size.startswith(want) or size.removeprefix("standard_").startswith(want)


def choose_pool(config: AzureBatchConfig, spec: JobSpec) -> PoolConfig:
    """The pool that fits the job: machine type, slots for threads, memory, GPUs.

    Among fitting pools the smallest (fewest slots) wins, so small jobs leave big nodes
    alone; a job without GPUs avoids GPU pools; a preemptible job prefers pools with
    low-priority nodes, another job pools with dedicated ones."""
    fits = []
    for pool in config.pools:
        if spec.machine_type and not _matches_type(pool, spec.machine_type):
            continue
        if spec.threads > config.slots(pool):
            continue
        if spec.mem_mb and pool.memory_mb and spec.mem_mb > pool.memory_mb:
            continue
        if spec.gpu and pool.gpus < spec.gpu:
            continue
        if spec.gpu_model and not google_gpus.same_model(pool.gpu_model, spec.gpu_model):
            continue
        fits.append(pool)
    if not fits:
        offered = ", ".join(
            f"{p.pool_id} ({p.vm_size}, {config.slots(p)} slots"
            + (f", {p.memory_mb} MB" if p.memory_mb else "")
            + (f", {p.gpus} GPU" if p.gpus else "")
            + ")"
            for p in config.pools
        )
        wanted = f"threads={spec.threads}" + (f", mem_mb={spec.mem_mb}" if spec.mem_mb else "")
        wanted += f", machine_type={spec.machine_type}" if spec.machine_type else ""
        wanted += f", gpu={spec.gpu}" if spec.gpu else ""
        raise UserError(
            f"no pool of environment {config.name or 'azure-batch'} fits rule {spec.rule} "
            f"({wanted}); pools: {offered}",
            "add a pool that fits, or lower the rule's resources",
        )
    order = {id(p): i for i, p in enumerate(config.pools)}
    return min(
        fits,
        key=lambda p: (
            not spec.gpu and p.gpus > 0,
            spec.preemptible and p.max_low_priority_nodes == 0,
            not spec.preemptible and p.max_dedicated_nodes == 0,
            config.slots(p),
            order[id(p)],
        ),
    )


def blob_url(outputs: Any, source: str) -> str:
    """az://CONTAINER/PATH -> the blob's https URL in the environment's storage account."""
    container, _, path = source.removeprefix("az://").partition("/")
    return f"{str(outputs['storage_blob_endpoint']).rstrip('/')}/{container}/{path}"


def _auth(
    config: AzureBatchConfig, outputs: Any, url: str, sas: str
) -> tuple[str, models.BatchNodeIdentityReference | None]:
    if config.output_files_auth == "sas":
        return f"{url}?{sas}", None
    return url, models.BatchNodeIdentityReference(resource_id=str(outputs["identity_id"]))


def build_task(spec: JobSpec, ctx: EnvContext, pool: PoolConfig) -> models.BatchTaskCreateOptions:
    config: AzureBatchConfig = ctx.config
    outputs = ctx.outputs
    tid = task_id(spec)
    run_options = ["--rm"]
    if spec.mem_mb:
        run_options.append(f"--memory={spec.mem_mb}m")
    if spec.gpu:
        run_options.append("--gpus=all")
    env = [models.EnvironmentSetting(name=name, value=env_placeholder(name)) for name in spec.env]
    env.append(
        models.EnvironmentSetting(name="AZURE_CLIENT_ID", value=str(outputs["identity_client_id"]))
    )
    if "SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME" not in spec.env:
        env.append(
            models.EnvironmentSetting(
                name="SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME",
                value=str(outputs["storage_account_name"]),
            )
        )
    logs_url = str(outputs["storage_container_urls"][config.logs_container])
    container_url, identity = _auth(config, outputs, logs_url, SAS_WRITE)
    output_files = [
        models.OutputFile(
            file_pattern="../std*.txt",
            destination=models.OutputFileDestination(
                container=models.OutputFileBlobContainerDestination(
                    container_url=container_url,
                    path=f"{spec.run_id}/{tid}",
                    identity_reference=identity,
                )
            ),
            upload_options=models.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
        )
    ]
    resource_files = []
    for item in config.resource_files:
        url, ref = _auth(config, outputs, blob_url(outputs, item.source), SAS_READ)
        resource_files.append(
            models.ResourceFile(http_url=url, file_path=item.file_path, identity_reference=ref)
        )
    constraints = models.BatchTaskConstraints(
        max_wall_clock_time=timedelta(minutes=spec.runtime) if spec.runtime else None,
        max_task_retry_count=0,  # Snakemake retries (--retries), with a new attempt id
        retention_time=TASK_RETENTION,
    )
    return models.BatchTaskCreateOptions(
        id=tid,
        display_name=spec.name,
        command_line=f"/bin/bash -c {shlex.quote(spec.command)}",
        container_settings=models.BatchTaskContainerSettings(
            image_name=spec.image,
            container_run_options=" ".join(run_options),
            working_directory="taskWorkingDirectory",
        ),
        environment_settings=env,
        resource_files=resource_files or None,
        output_files=output_files,
        constraints=constraints,
        required_slots=spec.threads,
        user_identity=models.UserIdentity(
            auto_user=models.AutoUserSpecification(scope="task", elevation_level="nonadmin")
        ),
    )


def serialise(model: Any) -> dict[str, Any]:
    """A model as the JSON body the service receives (read-only fields left out)."""
    return json.loads(json.dumps(model, cls=model_base.SdkJSONEncoder, exclude_readonly=True))


def translate(spec: JobSpec, ctx: EnvContext) -> dict[str, Any]:
    pool = choose_pool(ctx.config, spec)
    task = build_task(spec, ctx, pool)
    return {
        "account_url": str(ctx.outputs["batch_account_url"]),
        "pool_id": pool.pool_id,
        "job_id": job_id(spec.run_id, pool),
        "task": serialise(task),
    }

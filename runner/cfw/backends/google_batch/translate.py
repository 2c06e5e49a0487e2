"""JobSpec -> a Google Batch CreateJobRequest, built with google.cloud.batch_v1's message
classes. Pure: no network, no secret values (env vars are Secret Manager references).

``translate`` returns the request in its JSON mapping (the REST shape; `cfw run --explain`
prints it); a run submits ``build_request``'s message itself (the kind's ``submit_path``),
without the JSON round trip, which cost more than building the message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from cfw.backends._google import machines
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.google_batch.config import GoogleBatchConfig
from cfw.backends.sdk import require

batch_v1 = require("google.cloud.batch_v1", "gcp")
duration_pb2 = require("google.protobuf.duration_pb2", "gcp")

WORKDIR = "/tmp/cfw-job"  # the job's working directory in the container (sources land here)
PREEMPTED = 50001  # Batch's exit code for a task whose spot VM was preempted


def job_id(spec: JobSpec) -> str:
    """Unique per run, job and attempt; at most 63 characters of [a-z0-9-]."""
    suffix = f"-a{spec.attempt_tag}"
    return spec.name[: 63 - len(suffix)].rstrip("-") + suffix


def label_value(value: Any) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", str(value).lower())[:63]


def secret_id(ctx: EnvContext, var: str) -> str:
    return f"{ctx.outputs['secret_prefix']}{ctx.run_id}-{var}"


def secret_ref(ctx: EnvContext, var: str) -> str:
    return f"projects/{ctx.outputs['project']}/secrets/{secret_id(ctx, var)}/versions/latest"


def labels(spec: JobSpec, ctx: EnvContext) -> dict[str, str]:
    """The environment's labels plus the run, the job, its rule and attempt."""
    return {
        **dict(ctx.outputs.get("cfw_labels") or {}),  # validated when the config was read
        "cfw-run": label_value(spec.run_id),
        "cfw-job": str(spec.jobid),
        "cfw-rule": label_value(spec.rule),
        "cfw-attempt": str(spec.attempt),
    }


def build_request(spec: JobSpec, ctx: EnvContext) -> Any:
    """The CreateJobRequest message of one job."""
    config: GoogleBatchConfig = ctx.config
    out = ctx.outputs
    gpu_model = (spec.gpu_model or config.gpu_model) if spec.gpu > 0 else None
    choice = machines.choose(
        threads=spec.threads,
        mem_mb=spec.mem_mb,
        machine_type=spec.machine_type or config.machine_type,
        gpus=spec.gpu,
        gpu_model=gpu_model,
    )
    policy = batch_v1.AllocationPolicy

    options = ["--workdir", WORKDIR] + (["--gpus", "all"] if choice.gpus else [])
    runnable = batch_v1.Runnable(
        display_name=spec.rule,
        container=batch_v1.Runnable.Container(
            image_uri=spec.image,
            entrypoint="/bin/bash",
            commands=["-c", spec.command],
            options=" ".join(options),
        ),
        environment=batch_v1.Environment(
            variables={"PYTHONUNBUFFERED": "1", "CFW_JOB": spec.name},
            secret_variables={var: secret_ref(ctx, var) for var in spec.env},
        ),
    )
    memory = spec.mem_mb or (
        int(choice.memory_mib * machines.USABLE_MEMORY) if choice.memory_mib else 0
    )
    task = batch_v1.TaskSpec(
        runnables=[runnable],
        compute_resource=batch_v1.ComputeResource(
            cpu_milli=spec.threads * 1000, memory_mib=memory, boot_disk_mib=spec.disk_mb or 0
        ),
    )
    if spec.runtime:
        task.max_run_duration = duration_pb2.Duration(seconds=spec.runtime * 60)
    # Batch retries a task whose Spot VM was preempted itself (maxRetryCount, a lifecycle
    # policy on exit code 50001): the run's spot retries left (JobSpec.spot_retries); then
    # cfw resubmits the job on STANDARD (executor/retry.py)
    retries = config.preemption_retries if spec.spot_retries is None else spec.spot_retries
    if spec.preemptible and retries:
        task.max_retry_count = retries
        task.lifecycle_policies = [
            batch_v1.LifecyclePolicy(
                action=batch_v1.LifecyclePolicy.Action.RETRY_TASK,  # and fail on any other code
                action_condition=batch_v1.LifecyclePolicy.ActionCondition(exit_codes=[PREEMPTED]),
            )
        ]

    disk_gb = config.boot_disk_gb + math.ceil((spec.disk_mb or 0) / 1024)
    instance = policy.InstancePolicy(
        machine_type=choice.machine_type,
        provisioning_model=(
            policy.ProvisioningModel.SPOT if spec.preemptible else policy.ProvisioningModel.STANDARD
        ),
        boot_disk=policy.Disk(image=config.vm_image, type_=config.boot_disk_type, size_gb=disk_gb),
    )
    if choice.gpus:
        instance.accelerators = [policy.Accelerator(type_=choice.gpu_model, count=choice.gpus)]
    where = [f"zones/{z}" for z in config.zones] or [f"regions/{out['region']}"]
    job_labels = labels(spec, ctx)
    job = batch_v1.Job(
        task_groups=[batch_v1.TaskGroup(task_spec=task, task_count=1, parallelism=1)],
        allocation_policy=policy(
            location=policy.LocationPolicy(allowed_locations=where),
            instances=[
                policy.InstancePolicyOrTemplate(
                    policy=instance,
                    block_project_ssh_keys=True,
                    install_gpu_drivers=bool(choice.gpus) and config.install_gpu_drivers,
                )
            ],
            service_account=batch_v1.ServiceAccount(email=out["service_account"]),
            network=policy.NetworkPolicy(
                network_interfaces=[
                    policy.NetworkInterface(
                        network=out["network"],
                        subnetwork=out["subnetwork"],
                        no_external_ip_address=not config.external_ip,
                    )
                ]
            ),
            tags=[out["network_tag"]],
            labels=job_labels,
        ),
        labels=job_labels,
        logs_policy=batch_v1.LogsPolicy(destination=batch_v1.LogsPolicy.Destination.CLOUD_LOGGING),
    )
    return batch_v1.CreateJobRequest(
        parent=f"projects/{out['project']}/locations/{out['region']}",
        job_id=job_id(spec),
        job=job,
    )


def to_json(request: Any) -> dict[str, Any]:
    """A message in its proto3 JSON mapping (camelCase, enums by name, defaults omitted)."""
    return json.loads(
        type(request).to_json(
            request,
            use_integers_for_enums=False,
            always_print_fields_with_no_presence=False,
            indent=None,
        )
    )


def from_json(payload: dict[str, Any]) -> Any:
    return batch_v1.CreateJobRequest.from_json(json.dumps(payload))


def translate(spec: JobSpec, ctx: EnvContext) -> dict[str, Any]:
    return to_json(build_request(spec, ctx))

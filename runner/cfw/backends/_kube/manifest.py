"""The Kubernetes batch/v1 Job a cfw job becomes, and the run's Secret it refers to. Pure.

Every kind whose jobs are Kubernetes Jobs (gke, kubernetes) builds its manifest here; the
kind decides only where the pod may run (its ``placement``: node selector, affinity,
tolerations) and what it adds (annotations, credential files). Names and labels follow the
API's rules: a Job name is a DNS-1123 label, label values at most 63 characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cfw.backends.base import EnvContext, JobSpec

GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "cfw-run"
JOB_LABEL = "cfw-job"
ENV_ID_LABEL = "cfw-id"
WORKDIR = "/workdir"
# set on the pod of a job placed on spot capacity, so that its loss reads as a preemption
SPOT_ANNOTATION = "cfw/spot"
TTL_ANNOTATION = "cfw/deadline-ttl"  # the deadline is the ttl's: its cfw-expires-at
# the node labels of spot capacity on GKE, EKS (managed node groups, Karpenter) and AKS
SPOT_NODE_LABELS = {
    "cloud.google.com/gke-spot": "true",
    "eks.amazonaws.com/capacityType": "SPOT",
    "karpenter.sh/capacity-type": "spot",
    "kubernetes.azure.com/scalesetpriority": "spot",
}


def secret_name(run_id: str) -> str:
    """The run's Secret: every job of the run takes its environment values from it."""
    return f"cfw-{label_value(run_id).lower()}-env"


def job_name(spec: JobSpec) -> str:
    """DNS-1123 label of at most 63 characters: the spec's name and the attempt."""
    suffix = f"-a{spec.attempt_tag}"
    base = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", spec.name.lower())).strip("-")
    return (base[: 63 - len(suffix)].rstrip("-") or "cfw") + suffix


def label_value(value: Any) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value))[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", text)


def run_selector(run_id: str) -> str:
    """The label selector of one run's Jobs, pods and Secret."""
    return f"{MANAGED_BY}=cfw,{RUN_LABEL}={label_value(run_id)}"


def env_selector(env_id: str) -> str:
    """The label selector of everything cfw made for one environment (any run)."""
    return f"{MANAGED_BY}=cfw,{ENV_ID_LABEL}={label_value(env_id)}"


def labels(spec: JobSpec, ctx: EnvContext[Any]) -> dict[str, str]:
    return {
        MANAGED_BY: "cfw",
        "cfw-env": label_value(ctx.name),
        ENV_ID_LABEL: label_value(ctx.env_id),
        RUN_LABEL: label_value(spec.run_id),
        JOB_LABEL: str(spec.jobid),
        "cfw-rule": label_value(spec.rule) or "rule",
        "cfw-attempt": str(spec.attempt),
    }


def secret_labels(ctx: EnvContext[Any]) -> dict[str, str]:
    """The run's Secret: found by its run (end of run) and its environment (`cfw down`)."""
    return {
        MANAGED_BY: "cfw",
        "cfw-env": label_value(ctx.name),
        ENV_ID_LABEL: label_value(ctx.env_id),
        RUN_LABEL: label_value(ctx.run_id),
    }


def resources(
    spec: JobSpec, default_mem_mb: int, gpu_resource: str = GPU_RESOURCE
) -> dict[str, dict[str, str]]:
    """Requests equal to limits (a job gets what it asked for, and no more); GPUs are limits
    only, as the device plugin wants them."""
    amounts = {"cpu": str(spec.threads), "memory": f"{spec.mem_mb or default_mem_mb}Mi"}
    if spec.disk_mb:
        amounts["ephemeral-storage"] = f"{spec.disk_mb}Mi"
    limits = dict(amounts)
    if spec.gpu:
        limits[gpu_resource] = str(spec.gpu)
    return {"requests": amounts, "limits": limits}


def secret_env(names: Iterable[str], secret: str) -> list[dict[str, Any]]:
    """Environment entries whose values come from the run's Secret, never in the manifest."""
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name}}}
        for name in sorted(names)
    ]


def secret_ref(secret: str | None, namespace: str, keys: Iterable[str]) -> dict[str, Any] | None:
    """What the backend stores in the run's Secret before it creates the Job."""
    if not secret:
        return None
    return {"name": secret, "namespace": namespace, "keys": sorted(set(keys))}


def job_manifest(
    spec: JobSpec,
    ctx: EnvContext[Any],
    *,
    namespace: str,
    service_account: str,
    placement: Mapping[str, Any],
    resources: Mapping[str, Any],
    ttl_seconds: int,
    env: Sequence[Mapping[str, Any]] = (),
    annotations: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
    pod_labels: Mapping[str, str] | None = None,
    volumes: Sequence[Mapping[str, Any]] = (),
    volume_mounts: Sequence[Mapping[str, Any]] = (),
    image_pull_secrets: Sequence[str] = (),
    pod_security_context: Mapping[str, Any] | None = None,
    container_security_context: Mapping[str, Any] | None = None,
    automount_token: bool | None = None,
) -> dict[str, Any]:
    """The Job: one pod, never restarted (Snakemake retries), a fresh working directory,
    ``placement`` (nodeSelector, affinity, tolerations) from the kind."""
    job_labels = labels(spec, ctx)
    container: dict[str, Any] = {
        "name": "job",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", spec.command],
        "workingDir": WORKDIR,
        "resources": dict(resources),
        "volumeMounts": [{"name": "workdir", "mountPath": WORKDIR}, *map(dict, volume_mounts)],
    }
    if env:
        container["env"] = [dict(e) for e in env]
    if container_security_context:
        container["securityContext"] = dict(container_security_context)
    workdir: dict[str, Any] = {"sizeLimit": f"{spec.disk_mb}Mi"} if spec.disk_mb else {}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": service_account,
        **placement,
        "containers": [container],
        "volumes": [{"name": "workdir", "emptyDir": workdir}, *map(dict, volumes)],
    }
    if image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    if pod_security_context:
        pod_spec["securityContext"] = dict(pod_security_context)
    if automount_token is not None:
        pod_spec["automountServiceAccountToken"] = automount_token
    template_meta: dict[str, Any] = {"labels": {**dict(pod_labels or {}), **job_labels}}
    if pod_annotations:
        template_meta["annotations"] = dict(pod_annotations)
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": {"metadata": template_meta, "spec": pod_spec},
    }
    if spec.runtime:
        job_spec["activeDeadlineSeconds"] = spec.runtime * 60
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(spec),
            "namespace": namespace,
            "labels": job_labels,
            "annotations": {
                "cfw/rule": spec.rule,
                "cfw/wildcards": json.dumps(dict(spec.wildcards), sort_keys=True),
                **dict(annotations or {}),
            },
        },
        "spec": job_spec,
    }

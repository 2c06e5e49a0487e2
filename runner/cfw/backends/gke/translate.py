"""JobSpec -> a Kubernetes batch/v1 Job manifest for a GKE cluster cfw made, and the run's
Secret it refers to. Pure.

Where a job runs is decided here: its GPU, machine_type and preemptible resources select
the job pools that can hold it (by the ``cfw-pool`` node label the module sets); Spot and
GPU nodes are tainted, so a pod lands there only with the matching toleration. The Job
itself is the one every Kubernetes kind submits (cfw/backends/_kube/manifest.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cfw.backends._google import gpus as google_gpus
from cfw.backends._kube.manifest import (
    GPU_RESOURCE,
    job_manifest,
    resources,
    secret_env,
    secret_name,
    secret_ref,
)
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.gke import allocatable
from cfw.backends.gke.config import GkeConfig, Pool, node_pools
from cfw.core.errors import UserError

POOL_LABEL = "cfw-pool"
SPOT_LABEL = "cloud.google.com/gke-spot"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"


# -- pools ---------------------------------------------------------------------------------
def available_pools(config: GkeConfig, outputs: dict[str, Any]) -> list[Pool]:
    """The config's job pools that exist (all of them before `up`: placeholders)."""
    made = outputs.get("node_pools")
    pools = node_pools(config)
    if isinstance(made, dict) and made:
        pools = [p for p in pools if p.name in made]
    return pools


def type_matches(machine_type: str, wanted: str) -> bool:
    """Exact type, or a family prefix at a '-' boundary (n2 ~ n2-standard-8, not n2d-...)."""
    wanted = wanted.strip().lower().rstrip("-")
    return machine_type == wanted or machine_type.startswith(wanted + "-")


def model_matches(accelerator: str, model: str) -> bool:
    """A rule's gpu_model names the pool's accelerator: Google's name, or a short one
    (t4, a100, h100: google_gpus' table), or the name without nvidia-/nvidia-tesla-."""
    return google_gpus.same_model(accelerator, model)


def _types(pools: Sequence[Pool]) -> str:
    return ", ".join(sorted({p.machine_type for p in pools})) or "none"


def _family(pools: Sequence[Pool]) -> str:
    types = sorted({p.machine_type for p in pools})
    return types[0].rsplit("-", 1)[0] if types else "e2-standard"


def _that_fit(
    spec: JobSpec, pools: Sequence[Pool], config: GkeConfig, env: str, where: str
) -> list[Pool]:
    """The pools whose nodes can hold the job's pod (threads, memory and disk requests)."""
    mem_mb = spec.mem_mb or config.default_mem_mb
    fix_config = f"edit environments/{env}.yaml and `cfw up {env}` again"
    nodes = {p.name: allocatable.node(p.machine_type, config.disk_size_gb) for p in pools}
    fitting = [
        p for p in pools if allocatable.fits(nodes[p.name], spec.threads, mem_mb, spec.disk_mb)
    ]
    if fitting:
        return fitting
    largest = max(
        nodes.values(), key=lambda n: (n.allocatable_mib or 0, n.vcpus or 0, n.machine_type)
    )
    needs = f"{spec.threads} threads, {mem_mb} MiB of memory" + (
        f" and {spec.disk_mb} MiB of disk" if spec.disk_mb else ""
    )
    offers = [f"{largest.cpu_milli / 1000:g} vCPUs" if largest.cpu_milli else "its vCPUs"]
    if largest.allocatable_mib:
        offers.append(f"{largest.allocatable_mib} MiB of memory")
    offers.append(f"{largest.disk_mib} MiB of disk")
    raise UserError(
        f"{where} asks for {needs}; the largest node of {env} ({largest.machine_type}, "
        f"{config.disk_size_gb} GB boot disk) offers pods {', '.join(offers[:-1])} and "
        f"{offers[-1]} (GKE keeps part of every node for itself)",
        "lower the rule's threads/mem_mb/disk_mb, or add a bigger machine type (or raise "
        f"disk_size_gb): {fix_config}",
    )


def select_pools(
    spec: JobSpec, pools: Sequence[Pool], env: str, config: GkeConfig
) -> tuple[list[Pool], bool]:
    """The pools that can run the job, and whether they are Spot pools."""
    where = f"rule {spec.rule} (job {spec.jobid})"
    fix_config = f"edit environments/{env}.yaml and `cfw up {env}` again"
    if spec.gpu:
        candidates = [p for p in pools if p.accelerator]
        if not candidates:
            raise UserError(
                f"{where} asks for {spec.gpu} GPU(s) but environment {env} has no GPU pool",
                f"add gpu_pools: to environments/{env}.yaml and run `cfw up {env}` again",
            )
        if spec.gpu_model:
            have = sorted({p.accelerator for p in candidates if p.accelerator})
            candidates = [
                p for p in candidates if model_matches(p.accelerator or "", spec.gpu_model)
            ]
            if not candidates:
                raise UserError(
                    f"{where} asks for gpu_model {spec.gpu_model!r}, which no GPU "
                    f"pool of {env} has",
                    f"use one of: {', '.join(have)}",
                )
        enough = [p for p in candidates if p.accelerator_count >= spec.gpu]
        if not enough:
            most = max(p.accelerator_count for p in candidates)
            raise UserError(
                f"{where} asks for {spec.gpu} GPUs but the GPU pools of {env} have "
                f"at most {most} per node",
                f"ask for at most {most}, or {fix_config}",
            )
        candidates = enough
    else:
        candidates = [p for p in pools if not p.accelerator]
    if spec.machine_type:
        fitting = [p for p in candidates if type_matches(p.machine_type, spec.machine_type)]
        if not fitting:
            raise UserError(
                f"{where}: machine_type {spec.machine_type!r} matches no "
                f"{'GPU ' if spec.gpu else ''}node pool of {env}",
                f"use one of: {_types(candidates)} (exact, or a family prefix such as "
                f"{_family(candidates)}), or {fix_config}",
            )
        candidates = fitting
    if not candidates:
        raise UserError(
            f"environment {env} has no pool for {where}", f"add machine_types: and {fix_config}"
        )
    candidates = _that_fit(spec, candidates, config, env, where)
    if spec.preemptible:
        spot = [p for p in candidates if p.spot]
        if spot:
            return spot, True
    on_demand = [p for p in candidates if not p.spot]
    if not on_demand:
        raise UserError(
            f"{where} is not preemptible, but only Spot pools can hold it",
            "mark the rule preemptible (resources: preemptible=True, or --preemptible-rules), "
            f"or add an on-demand pool: {fix_config}",
        )
    return on_demand, False


# -- the Job -------------------------------------------------------------------------------
def placement(spec: JobSpec, pools: list[Pool], spot: bool) -> dict[str, Any]:
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    if spot:
        node_selector[SPOT_LABEL] = "true"
        tolerations.append(
            {"key": SPOT_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        )
    if spec.gpu:
        accelerators = sorted({p.accelerator for p in pools if p.accelerator})
        if len(accelerators) == 1:
            node_selector[ACCELERATOR_LABEL] = accelerators[0]
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    terms = [{"key": POOL_LABEL, "operator": "In", "values": sorted(p.name for p in pools)}]
    if spec.gpu and ACCELERATOR_LABEL not in node_selector:
        terms.append(
            {
                "key": ACCELERATOR_LABEL,
                "operator": "In",
                "values": sorted({p.accelerator for p in pools if p.accelerator}),
            }
        )
    out: dict[str, Any] = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": terms}]
                }
            }
        },
    }
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    return out


def translate(spec: JobSpec, ctx: EnvContext[GkeConfig]) -> dict[str, Any]:
    config = ctx.config
    outputs = dict(ctx.outputs)
    namespace = outputs.get("namespace") or config.namespace
    service_account = outputs.get("service_account") or config.service_account
    pools, spot = select_pools(spec, available_pools(config, outputs), ctx.name, config)
    secret = secret_name(spec.run_id) if spec.env else None
    manifest = job_manifest(
        spec,
        ctx,
        namespace=namespace,
        service_account=service_account,
        placement=placement(spec, pools, spot),
        resources=resources(spec, config.default_mem_mb),
        ttl_seconds=int(config.finished_job_ttl.total_seconds()),
        env=secret_env(spec.env, secret) if secret else (),
        annotations={"cfw/pools": ",".join(sorted(p.name for p in pools))},
        # a running job must not be evicted to scale its node down
        pod_annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
    )
    return {"job": manifest, "secret": secret_ref(secret, namespace, spec.env)}

"""JobSpec -> a Kubernetes batch/v1 Job for a cluster cfw did not create, and the run's Secret
it refers to. Pure.

Without node pools a job goes wherever the scheduler puts it: only threads, mem_mb,
disk_mb and gpu become requests. With them, a job's gpu, gpu_model, machine_type and
preemptible pick the pools that can hold it (their node selectors, ORed; their
tolerations), and a job no pool can hold is refused here, before anything is submitted.
The Job itself is the one every Kubernetes kind submits (cfw/backends/_kube/manifest.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfw.backends._google import gpus as google_gpus
from cfw.backends._kube.manifest import (
    GPU_RESOURCE,
    SPOT_ANNOTATION,
    SPOT_NODE_LABELS,
    job_manifest,
    resources,
    secret_env,
    secret_name,
    secret_ref,
)
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.kubernetes.pools import NodePool
from cfw.backends.kubernetes.storage import CREDENTIALS_DIR, job_credentials
from cfw.core.errors import UserError

AZURE_IDENTITY_ANNOTATION = "azure.workload.identity/client-id"
AZURE_IDENTITY_LABEL = "azure.workload.identity/use"


def _fix(env: str) -> str:
    return f"edit node_pools in environments/{env}.yaml and `cfw up {env}` again"


def type_matches(machine_type: str, wanted: str) -> bool:
    """Exact (any case), or a family prefix at a '.', '-' or '_' boundary: m5 ~ m5.2xlarge,
    Standard_D ~ Standard_D8s_v5 is not one (no boundary), n2 ~ n2-standard-8."""
    have, want = machine_type.lower(), wanted.strip().lower().rstrip(".-_")
    return have == want or any(have.startswith(want + sep) for sep in ".-_")


def model_matches(pool_model: str | None, wanted: str) -> bool:
    """t4, tesla-t4, nvidia-tesla-t4 and Tesla-T4 name one model."""
    return google_gpus.same_model(pool_model, wanted)


def _needs(spec: JobSpec, mem_mb: int) -> str:
    return f"{spec.threads} threads, {mem_mb} MiB of memory" + (
        f" and {spec.disk_mb} MiB of disk" if spec.disk_mb else ""
    )


def fits(pool: NodePool, spec: JobSpec, mem_mb: int) -> bool:
    return (
        (pool.cpu is None or spec.threads <= pool.cpu)
        and (pool.memory_mb is None or mem_mb <= pool.memory_mb)
        and (pool.disk_mb is None or not spec.disk_mb or spec.disk_mb <= pool.disk_mb)
    )


def _biggest(pools: Sequence[NodePool]) -> NodePool:
    return max(pools, key=lambda p: (p.memory_mb or 0, p.cpu or 0, p.disk_mb or 0, p.name))


def _by_gpu(spec: JobSpec, pools: Sequence[NodePool], env: str, where: str) -> list[NodePool]:
    if not spec.gpu:
        return [p for p in pools if not p.gpus]
    candidates = [p for p in pools if p.gpus]
    if not candidates:
        raise UserError(
            f"{where} asks for {spec.gpu} GPU(s) but no node pool of {env} has GPUs",
            f"add a pool with gpus: ({_fix(env)})",
        )
    if spec.gpu_model:
        have = sorted({p.gpu_model for p in candidates if p.gpu_model})
        candidates = [p for p in candidates if model_matches(p.gpu_model, spec.gpu_model)]
        if not candidates:
            raise UserError(
                f"{where} asks for gpu_model {spec.gpu_model!r}, which no GPU pool of {env} has",
                f"use one of: {', '.join(have)}" if have else "give the GPU pools a gpu_model",
            )
    enough = [p for p in candidates if p.gpus >= spec.gpu]
    if not enough:
        most = max(p.gpus for p in candidates)
        raise UserError(
            f"{where} asks for {spec.gpu} GPUs but the GPU pools of {env} have at most "
            f"{most} per node",
            f"ask for at most {most}, or {_fix(env)}",
        )
    resource = sorted(enough, key=lambda p: p.name)[0].gpu_resource
    return [p for p in enough if p.gpu_resource == resource]


def select_pools(spec: JobSpec, config: KubernetesConfig, env: str) -> tuple[list[NodePool], bool]:
    """The pools that can run the job and whether they are spot; no pools: anywhere."""
    if not config.node_pools:
        return [], False
    where = f"rule {spec.rule} (job {spec.jobid})"
    candidates = _by_gpu(spec, config.node_pools, env, where)
    if not candidates:
        raise UserError(f"environment {env} has no pool without GPUs for {where}", _fix(env))
    if spec.machine_type:
        matching = [
            p
            for p in candidates
            if type_matches(p.instance_type or "", spec.machine_type) or p.name == spec.machine_type
        ]
        if not matching:
            types = sorted({p.instance_type or p.name for p in candidates})
            raise UserError(
                f"{where}: machine_type {spec.machine_type!r} matches no "
                f"{'GPU ' if spec.gpu else ''}node pool of {env}",
                f"use one of: {', '.join(types)} (exact, or a family prefix), or {_fix(env)}",
            )
        candidates = matching
    mem_mb = spec.mem_mb or config.default_mem_mb
    fitting = [p for p in candidates if fits(p, spec, mem_mb)]
    if not fitting:
        big = _biggest(candidates)
        raise UserError(
            f"{where} asks for {_needs(spec, mem_mb)}; the biggest node pool of {env} that "
            f"could take it, {big.name}, offers {big.describe()} per node",
            f"lower the rule's threads/mem_mb/disk_mb, or {_fix(env)}",
        )
    if spec.preemptible:
        spot = [p for p in fitting if p.is_spot]
        if spot:
            return spot, True
    on_demand = [p for p in fitting if not p.is_spot]
    if not on_demand:
        raise UserError(
            f"{where} is not preemptible, but only spot pools can hold it",
            "mark the rule preemptible (resources: preemptible=True, or --preemptible-rules), "
            f"or add an on-demand pool: {_fix(env)}",
        )
    return on_demand, False


def check_limits(spec: JobSpec, config: KubernetesConfig, env: str) -> None:
    """A job above the namespace's LimitRange maximum or its whole quota never starts (its
    pod is refused at admission): refuse it now."""
    mem_mb = spec.mem_mb or config.default_mem_mb
    where = f"rule {spec.rule} (job {spec.jobid})"
    fix = f"lower the rule's threads/mem_mb, or raise them in environments/{env}.yaml"
    limits, quota = config.limits, config.quota
    caps = [
        ("limits.max_cpu", limits and limits.max_cpu, spec.threads, "CPUs"),
        ("limits.max_memory_mb", limits and limits.max_memory_mb, mem_mb, "MiB of memory"),
        ("quota.cpu", quota and quota.cpu, spec.threads, "CPUs"),
        ("quota.memory_mb", quota and quota.memory_mb, mem_mb, "MiB of memory"),
        ("quota.gpus", quota.gpus if quota else None, spec.gpu, "GPUs"),
    ]
    for name, cap, asked, unit in caps:
        if cap is not None and asked > cap:
            raise UserError(f"{where} asks for {asked} {unit}; {name} of {env} is {cap:g}", fix)


def _expressions(labels: dict[str, str], operator: str) -> list[dict[str, Any]]:
    return [{"key": k, "operator": operator, "values": [v]} for k, v in sorted(labels.items())]


def placement(
    spec: JobSpec,
    pools: Sequence[NodePool],
    gpu_resource: str,
    avoid: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Node selector (one pool) or node affinity (any of several pools, each term keeping
    off the nodes with that pool's ``avoid`` labels), and the pools' tolerations."""
    out: dict[str, Any] = {}
    avoid = avoid or {}
    pairs = {
        (tuple(sorted(p.node_selector.items())), tuple(sorted(avoid.get(p.name, {}).items())))
        for p in pools
    }
    if any(not selector and not away for selector, away in pairs):
        pairs = set()  # one of the pools is "any node": so is the job's
    if len(pairs) == 1 and not next(iter(pairs))[1]:
        out["nodeSelector"] = dict(next(iter(pairs))[0])
    elif pairs:
        terms = [
            {"matchExpressions": _expressions(dict(sel), "In") + _expressions(dict(away), "NotIn")}
            for sel, away in sorted(pairs)
        ]
        out["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }
    tolerations: list[dict[str, Any]] = []
    for pool in pools:
        for toleration in pool.pod_tolerations:
            if toleration.manifest() not in tolerations:
                tolerations.append(toleration.manifest())
    gpu = {"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
    if spec.gpu and gpu not in tolerations:
        tolerations.append(gpu)
    if tolerations:
        out["tolerations"] = tolerations
    return out


def spot_labels(config: KubernetesConfig, pool: NodePool) -> dict[str, str]:
    """The well-known spot labels an on-demand job on ``pool`` must avoid: those of each
    spot pool whose other labels every node of ``pool`` has (the same machines as spot
    capacity, EKS's usual pair of node groups), which an untainted spot node would match."""
    out: dict[str, str] = {}
    mine = pool.node_selector
    for other in config.node_pools:
        if not other.is_spot:
            continue
        labels = other.node_selector
        spot = {k: v for k, v in labels.items() if SPOT_NODE_LABELS.get(k) == v}
        rest = {k: v for k, v in labels.items() if k not in spot}
        if spot and all(mine.get(k) == v for k, v in rest.items()):
            out.update({k: v for k, v in spot.items() if k not in mine})
    return out


def security(level: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pod and container securityContext that meet the namespace's Pod Security level."""
    if level == "privileged":
        return {}, {}
    container: dict[str, Any] = {"allowPrivilegeEscalation": False}
    if level == "restricted":
        container |= {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    return {"seccompProfile": {"type": "RuntimeDefault"}}, container


def credentials(
    spec: JobSpec, config: KubernetesConfig
) -> tuple[str | None, set[str], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's Secret (None: nothing to keep), its keys, and the pod's environment,
    volumes and mounts: the job's variables and the storage credentials by reference, a
    key file mounted read-only from the Secret."""
    creds = job_credentials(config)
    from_secret = (set(spec.env) | set(creds.env)) - set(creds.plain)
    keys = from_secret | set(creds.files)
    secret = secret_name(spec.run_id) if keys else None
    env = [
        *secret_env(from_secret, secret or ""),
        *({"name": k, "value": v} for k, v in sorted(creds.plain.items())),
    ]
    volumes, mounts = [], []
    if creds.files and secret:
        items = [{"key": key, "path": key} for key in sorted(creds.files)]
        volumes.append(
            {
                "name": "cfw-credentials",
                "secret": {"secretName": secret, "items": items, "defaultMode": 0o440},
            }
        )
        mounts.append({"name": "cfw-credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
    return secret, keys, env, volumes, mounts


def translate(spec: JobSpec, ctx: EnvContext[KubernetesConfig]) -> dict[str, Any]:
    config = ctx.config
    outputs = dict(ctx.outputs)
    namespace = outputs.get("namespace") or config.namespace
    service_account = outputs.get("jobs_service_account") or config.jobs_service_account
    pools, spot = select_pools(spec, config, ctx.name)
    check_limits(spec, config, ctx.name)
    gpu_resource = pools[0].gpu_resource if spec.gpu and pools else GPU_RESOURCE
    avoid = {} if spot else {p.name: spot_labels(config, p) for p in pools}
    secret, keys, env, volumes, mounts = credentials(spec, config)
    pod_annotations = {
        # a running job must not be evicted to scale its node down (cluster-autoscaler, Karpenter)
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        "karpenter.sh/do-not-disrupt": "true",
    }
    if spot:
        pod_annotations[SPOT_ANNOTATION] = "true"
    pod_labels = dict(config.pod_labels)
    if AZURE_IDENTITY_ANNOTATION in config.service_account_annotations:
        pod_labels.setdefault(AZURE_IDENTITY_LABEL, "true")
    pod_security, container_security = security(config.pod_security)
    manifest = job_manifest(
        spec,
        ctx,
        namespace=namespace,
        service_account=service_account,
        placement=placement(spec, pools, gpu_resource, avoid),
        resources=resources(spec, config.default_mem_mb, gpu_resource),
        ttl_seconds=int(config.finished_job_ttl.total_seconds()),
        env=env,
        annotations={"cfw/pools": ",".join(sorted(p.name for p in pools))} if pools else None,
        pod_annotations=pod_annotations,
        pod_labels=pod_labels,
        volumes=volumes,
        volume_mounts=mounts,
        image_pull_secrets=config.image_pull_secrets,
        pod_security_context=pod_security,
        container_security_context=container_security,
        # a job needs no Kubernetes API token (workload identity brings its own)
        automount_token=False,
    )
    return {"job": manifest, "secret": secret_ref(secret, namespace, keys)}

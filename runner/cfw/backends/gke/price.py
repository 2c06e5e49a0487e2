"""What a GKE job pays: its share of a node of the pool it lands on. Pure; an estimate.

Jobs share nodes: a pod asking for 2 of a node's 3.92 allocatable vCPUs leaves room for
others, and the node bills the same either way. A job's share is the largest of its
requests' shares of what the node gives pods (CPU, memory, disk, GPUs; see
allocatable.py), at most the whole node. Where several pools can hold the job (the
scheduler and the autoscaler choose among them), the estimate takes the cheapest.
"""

from __future__ import annotations

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.gke import allocatable
from cfw.backends.gke.config import GkeConfig, Pool, node_pools
from cfw.backends.gke.translate import available_pools, select_pools
from cfw.core.prices import JobPrice, PoolPrice, quote

CLOUD = "gcp"


def share(spec: JobSpec, pool: Pool, config: GkeConfig) -> float:
    """The job's share of one node of ``pool``: its largest request's share."""
    node = allocatable.node(pool.machine_type, config.disk_size_gb)
    parts = []
    if node.cpu_milli:
        parts.append(spec.threads * 1000 / node.cpu_milli)
    if node.allocatable_mib:
        parts.append((spec.mem_mb or config.default_mem_mb) / node.allocatable_mib)
    if spec.disk_mb and node.disk_mib > 0:
        parts.append(spec.disk_mb / node.disk_mib)
    if spec.gpu and pool.accelerator_count:
        parts.append(spec.gpu / pool.accelerator_count)
    return min(1.0, max(parts)) if parts else 1.0


def node_quote(pool: Pool, config: GkeConfig, job_share: float = 1.0) -> JobPrice:
    return quote(
        CLOUD,
        config.region,
        pool.machine_type,
        spot=pool.spot,
        share=job_share,
        gpu_model=pool.accelerator,
        gpus=pool.accelerator_count,
    )


def job_price(spec: JobSpec, ctx: EnvContext[GkeConfig]) -> JobPrice:
    config = ctx.config
    pools, _ = select_pools(spec, available_pools(config, dict(ctx.outputs)), ctx.name, config)
    quotes = [node_quote(pool, config, share(spec, pool, config)) for pool in pools]
    priced = [q for q in quotes if q.usd_per_hour is not None]
    if not priced:
        return quotes[0]
    return min(priced, key=lambda q: (q.usd_per_hour, q.machine))


def pool_prices(config: GkeConfig) -> list[PoolPrice]:
    return [
        PoolPrice(pool.name, node_quote(pool, config), f"0 to {pool.max_nodes} nodes")
        for pool in node_pools(config)
    ]

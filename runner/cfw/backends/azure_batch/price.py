"""What an Azure Batch task pays: its slots' share of a node of its pool. Pure; an estimate.

A pool's nodes run ``task_slots_per_node`` tasks at once and a task takes ``threads``
slots (required_slots), so a task pays threads / slots of the node (all of it with one
slot per node, the default). Low-priority (spot) or dedicated: the autoscale formula fills
low-priority nodes first where the pool prefers them or has no dedicated ones, dedicated
nodes first otherwise; the estimate takes the capacity the formula fills first.
"""

from __future__ import annotations

from cfw.backends.azure_batch.config import AzureBatchConfig, PoolConfig
from cfw.backends.base import EnvContext, JobSpec
from cfw.core.prices import JobPrice, PoolPrice, quote

CLOUD = "azure"


def low_priority_first(pool: PoolConfig) -> bool:
    """Whether the autoscale formula fills low-priority nodes before dedicated ones."""
    return pool.max_low_priority_nodes > 0 and (
        pool.prefer_low_priority or pool.max_dedicated_nodes == 0
    )


def job_price(spec: JobSpec, ctx: EnvContext[AzureBatchConfig], region: str | None) -> JobPrice:
    from cfw.backends.azure_batch.translate import choose_pool  # the SDK's model classes

    config = ctx.config
    pool = choose_pool(config, spec)
    share = max(1, spec.threads) / config.slots(pool)
    return quote(CLOUD, region, pool.vm_size, spot=low_priority_first(pool), share=share)


def pool_prices(config: AzureBatchConfig, where: str | None) -> list[PoolPrice]:
    out = []
    for pool in config.pools:
        slots = config.slots(pool)
        note = f"{slots} task slots per node" if slots > 1 else "one task per node"
        if pool.max_dedicated_nodes:
            out.append(
                PoolPrice(
                    pool.pool_id,
                    quote(CLOUD, where, pool.vm_size),
                    f"0 to {pool.max_dedicated_nodes} dedicated nodes",
                    note,
                )
            )
        if pool.max_low_priority_nodes:
            out.append(
                PoolPrice(
                    pool.pool_id,
                    quote(CLOUD, where, pool.vm_size, spot=True),
                    f"0 to {pool.max_low_priority_nodes} low-priority nodes",
                    note,
                )
            )
    return out

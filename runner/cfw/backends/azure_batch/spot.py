"""Where a preempted azure-batch job goes next. Pure.

Batch requeues a task whose low-priority node is preempted by itself, and runs it again
when a node is free: that is its native spot retry (the task's requeueCount counts them;
retryCount and maxTaskRetryCount are not touched). cfw lets Batch do so up to the run's
spot retries, then stops the task (backend.py) and resubmits the job once to a pool of
dedicated nodes only, the pool that fits it without ``preemptible``.
"""

from __future__ import annotations

import dataclasses

from cfw.backends.azure_batch.config import AzureBatchConfig, PoolConfig
from cfw.backends.base import EnvContext, JobSpec
from cfw.core.errors import CfwError


def pool_of(spec: JobSpec, ctx: EnvContext[AzureBatchConfig]) -> PoolConfig:
    from cfw.backends.azure_batch.translate import choose_pool  # the SDK's model classes

    return choose_pool(ctx.config, spec)


def on_demand_problem(spec: JobSpec, ctx: EnvContext[AzureBatchConfig]) -> str | None:
    """Why the job cannot go to dedicated nodes; None: the pool it would get has only
    dedicated nodes."""
    try:
        pool = pool_of(dataclasses.replace(spec, preemptible=False), ctx)
    except CfwError as exc:
        return exc.message
    if pool.max_dedicated_nodes == 0 or pool.max_low_priority_nodes > 0:
        return (
            f"no pool of dedicated nodes only fits it (pool {pool.pool_id} has "
            f"{pool.max_low_priority_nodes} low-priority and {pool.max_dedicated_nodes} "
            "dedicated nodes at most)"
        )
    return None

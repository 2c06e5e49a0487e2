"""What a job on a cluster cfw did not create pays: cfw cannot say. Pure.

The cluster's cloud, region, node prices and discounts are its owner's (an on-premises
cluster has none by the hour), so a job's ``price`` names the node type its pool selects
and says there is no price for it, rather than guess.
"""

from __future__ import annotations

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.kubernetes.translate import select_pools
from cfw.core.prices import JobPrice, no_price


def job_price(spec: JobSpec, ctx: EnvContext[KubernetesConfig]) -> JobPrice:
    pools, spot = select_pools(spec, ctx.config, ctx.name)
    types = sorted({p.instance_type or p.name for p in pools})
    machine = " or ".join(types) if types else "a node of the cluster"
    return no_price(
        machine,
        "spot" if spot else "on-demand",
        f"no price for {machine} in a cluster cfw did not create: its cloud, region and "
        "prices are its owner's",
    )

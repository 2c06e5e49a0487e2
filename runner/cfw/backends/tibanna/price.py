"""What a Tibanna job pays: the whole EC2 instance Tibanna starts for it. Pure; an estimate.

The instance is the rule's machine_type (an exact type, or the cheapest fitting type of a
family, as translate resolves it), else the one Tibanna's run_task launches first for the
job's cpu and mem: the cheapest type of its Benchmark table with at least cpu vCPUs and
mem + 1 GB (Benchmark's get_instance_types, ranked by cost). A preemptible job asks for a
spot instance; its EBS volumes are not priced.
"""

from __future__ import annotations

import math

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.tibanna.config import TibannaConfig
from cfw.backends.tibanna.translate import (
    MEM_OVERHEAD_GB,
    _benchmark_instances,
    resolve_instance_type,
)
from cfw.core.prices import JobPrice, no_price, quote, table

CLOUD = "aws"


def instance_type(spec: JobSpec, config: TibannaConfig) -> str | None:
    """The type the job's instance will be (None: Tibanna has none that fits)."""
    mem_gb = math.ceil((spec.mem_mb or config.default_mem_mb) / 512) / 2  # as translate
    cpu = max(1, spec.threads)
    if spec.machine_type:
        return resolve_instance_type(spec.machine_type, cpu, mem_gb)
    need = mem_gb + MEM_OVERHEAD_GB
    fitting = [r for r in _benchmark_instances() if r[1] >= cpu and r[2] >= need]
    return min(fitting, key=lambda r: r[3])[0] if fitting else None


def job_price(spec: JobSpec, ctx: EnvContext[TibannaConfig], region: str | None) -> JobPrice:
    capacity = "spot" if spec.preemptible else "on-demand"
    machine = instance_type(spec, ctx.config)
    if machine is None:
        return no_price(
            "?", capacity, "no price: no instance type Tibanna picks from fits", table(CLOUD).as_of
        )
    where = region or ctx.outputs.get("region")
    return quote(CLOUD, where, machine, spot=spec.preemptible)

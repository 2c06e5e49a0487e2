"""What a TES task pays on the Funnel cfw provisions: the EC2 instance AWS Batch starts for
it, whole. Pure; an estimate.

Funnel submits each task as an AWS Batch job asking for its cpu_cores and ram_gb (1 vCPU
and 512 MiB when the task names none). The compute environment picks among
``batch.instance_types`` with BEST_FIT_PROGRESSIVE (on demand) or SPOT_CAPACITY_OPTIMIZED
(spot: ``batch.spot``), preferring the lowest-cost type that fits; "optimal" means the
C4, M4 and R4 families (AWS Batch's documented meaning). The estimate is the cheapest
type of those families in the price table that fits the task, as if the task had it to
itself (Batch may pack several tasks onto a larger instance: then each pays less).

A TES server cfw did not provision (``url``) runs tasks on machines cfw knows nothing
about: its tasks have no price.
"""

from __future__ import annotations

import re

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.tes.config import TesConfig
from cfw.core.prices import JobPrice, no_price, quote, table

CLOUD = "aws"
OPTIMAL = ("c4", "m4", "r4")
DEFAULT_MEMORY_GIB = 0.5  # the job definition's 512 MiB
_SIZE = re.compile(r"^(?P<family>[a-z]+\d+[a-z]*)\.(?P<n>\d*)(?P<size>medium|large|xlarge)$")
_GIB_PER_VCPU = {"c": 2.0, "m": 4.0, "r": 8.0}
_ODD = {"c4": 1.875, "r4": 7.625}  # c4.large: 3.75 GiB, r4.large: 15.25 GiB
_ODD_SHAPES = {"c4.8xlarge": (36, 60.0)}


def shape(instance_type: str) -> tuple[int, float] | None:
    """(vCPUs, memory GiB) of an instance of the c, m or r families, from its name."""
    if instance_type in _ODD_SHAPES:
        return _ODD_SHAPES[instance_type]
    match = _SIZE.match(instance_type)
    if not match or match["family"][0] not in _GIB_PER_VCPU:
        return None
    size, n = match["size"], int(match["n"] or 1)
    vcpus = {"medium": 1, "large": 2}.get(size) or 4 * n
    per_vcpu = _ODD.get(match["family"], _GIB_PER_VCPU[match["family"][0]])
    return vcpus, vcpus * per_vcpu


def allowed(instance_types: list[str], listed: list[str]) -> list[str]:
    """The listed types the compute environment may start."""
    families = {t for t in instance_types if "." not in t and t != "optimal"}
    if "optimal" in instance_types:
        families |= set(OPTIMAL)
    exact = {t for t in instance_types if "." in t}
    return [m for m in listed if m in exact or m.split(".")[0] in families]


def instance_type(spec: JobSpec, config: TesConfig, region: str) -> str | None:
    """The cheapest allowed type (on demand) that fits the task, or None."""
    cpu = max(1, spec.threads)
    mem_gib = spec.mem_mb / 1000 if spec.mem_mb else DEFAULT_MEMORY_GIB  # ram_gb, as MiB x 1024
    tab = table(CLOUD)
    listed = {name for layer in tab.layers for name in layer.data["machines"].get(region, {})}
    fitting = []
    for name in allowed(list(config.batch.instance_types), sorted(listed)):
        size, usd = shape(name), tab.find("machines", region, name, "on_demand")
        if size and usd is not None and size[0] >= cpu and size[1] >= mem_gib:
            fitting.append((usd[0], size, name))
    return min(fitting)[2] if fitting else None


def job_price(spec: JobSpec, ctx: EnvContext[TesConfig], region: str | None) -> JobPrice:
    config = ctx.config
    capacity = "spot" if config.provision and config.batch.spot else "on-demand"
    as_of = table(CLOUD).as_of
    if not config.provision:
        return no_price(
            "?",
            capacity,
            f"no price for the machines of {config.url}: cfw did not provision that TES "
            "server and does not know what it runs tasks on",
            as_of,
        )
    if not region or region not in table(CLOUD).regions:  # the table's own "no price"
        return quote(CLOUD, region, "an AWS Batch instance", spot=config.batch.spot)
    machine = instance_type(spec, config, region)
    if machine is None:
        types = ", ".join(config.batch.instance_types)
        return no_price(
            f"AWS Batch ({types})",
            capacity,
            f"no price for an instance of {types} in {region} with {max(1, spec.threads)} "
            f"vCPUs: the table has none that fits (prices as of {as_of})",
            as_of,
        )
    return quote(CLOUD, region, machine, spot=config.batch.spot)

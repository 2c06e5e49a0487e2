"""Public list prices, shipped with cfw and read offline: what a machine, a GPU and an idle
environment cost per hour. Every figure is an ESTIMATE, never a bill.

Tables (``data/aws.json``, ``gcp.json``, ``azure.json``) name their ``source`` and the
``as_of`` date their prices held; ``cfw prices --refresh`` may write newer ones to a user
directory, which lookups then prefer (see :mod:`cfw.core.prices.tables`). A leaf: stdlib
and cfw.core.errors only, and the data is loaded on first use, so importing it is cheap.

The API::

    machine_price(cloud, region, machine, *, spot=False) -> Price
    gpu_price(cloud, region, model, count=1, *, spot=False) -> Price      # gcp: GPUs apart
    node_price(cloud, region, machine, *, spot=False, gpu_model=None, gpus=0) -> Price
    fixed_costs(kind, region, settings=None) -> list[FixedCost]
    idle_usd_per_hour(costs) -> float
    quote(cloud, region, machine, *, spot=False, share=1.0, gpu_model=None, gpus=0) -> JobPrice

A missing price raises :class:`NoPrice` (not a CfwError: show its message and go on);
an unknown region is a missing price, never the nearest region's. :func:`quote` (a job's
share of a machine, :mod:`cfw.core.prices.job`) never raises: its JobPrice says why.
"""

from cfw.core.prices.fixed import FixedCost, fixed_costs, idle_usd_per_hour
from cfw.core.prices.job import (
    ON_DEMAND,
    SPOT,
    JobPrice,
    PoolPrice,
    format_usd,
    no_price,
    quote,
)
from cfw.core.prices.lookup import (
    NoPrice,
    Price,
    Shape,
    google_shape,
    gpu_price,
    machine_price,
    node_price,
)
from cfw.core.prices.tables import (
    CLOUDS,
    HOURS_PER_MONTH,
    Table,
    canonical_cloud,
    reload,
    table,
    user_dir,
)

ESTIMATE = "estimate"

__all__ = [
    "CLOUDS",
    "ESTIMATE",
    "HOURS_PER_MONTH",
    "ON_DEMAND",
    "SPOT",
    "FixedCost",
    "JobPrice",
    "NoPrice",
    "PoolPrice",
    "Price",
    "Shape",
    "Table",
    "canonical_cloud",
    "fixed_costs",
    "format_usd",
    "google_shape",
    "gpu_price",
    "idle_usd_per_hour",
    "machine_price",
    "no_price",
    "node_price",
    "quote",
    "reload",
    "table",
    "user_dir",
]

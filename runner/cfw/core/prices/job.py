"""What one job pays per hour: its share of the machine it gets, at the capacity it gets.

Each kind knows which machine a job gets and how many jobs share it (a VM of its own on
Tibanna, Google Batch and Funnel's AWS Batch; a share of a node in GKE and Azure Batch
pools) and says so with :func:`quote`; the executor multiplies the hourly price by the
job's wall time. A price the tables lack is a :class:`JobPrice` with a ``problem`` (the
NoPrice message), never an exception: a job without a price still runs and explains.
Every figure is an ESTIMATE, never a bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cfw.core.prices.lookup import NoPrice, Price, node_price
from cfw.core.prices.tables import table

SPOT = "spot"
ON_DEMAND = "on-demand"


@dataclass(frozen=True)
class JobPrice:
    """One job's hourly price: ``share`` of ``node`` (the machine's list price at the job's
    capacity), and of ``on_demand`` (the same machine on demand: what spot saves against)."""

    machine: str
    capacity: str  # "spot" or "on-demand"
    share: float = 1.0
    node: Price | None = None
    on_demand: Price | None = None
    problem: str | None = None  # why there is no price ("no price for X in Y ...")
    as_of: str = ""

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.node is None else self.node.usd_per_hour * self.share

    @property
    def on_demand_usd_per_hour(self) -> float | None:
        ref = self.on_demand or (self.node if self.capacity == ON_DEMAND else None)
        return None if ref is None else ref.usd_per_hour * self.share

    @property
    def spot(self) -> bool:
        return self.capacity == SPOT

    def as_dict(self) -> dict[str, Any]:
        """The ``price`` of a job in `cfw run --explain`; with ``problem`` when there is none."""
        if self.node is not None:
            return self.node.as_dict(self.share)
        return {
            "usd_per_hour": None,
            "node_usd_per_hour": None,
            "machine": self.machine,
            "capacity": self.capacity,
            "as_of": self.as_of,
            "problem": self.problem,
        }

    def as_record(self) -> dict[str, Any]:
        """What the run's records keep: the explain field, plus the on-demand price of the
        same share where the job runs on spot (the savings are computed from it)."""
        record = self.as_dict()
        if self.spot:
            od = self.on_demand_usd_per_hour
            record["on_demand_usd_per_hour"] = None if od is None else round(od, 6)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JobPrice:
        """A price read back from the run's records (or a synthetic one in tests)."""
        capacity = str(record.get("capacity") or ON_DEMAND)
        as_of = str(record.get("as_of") or "")
        machine = str(record.get("machine") or "?")
        node_usd = record.get("node_usd_per_hour")
        if node_usd is None:
            return cls(machine, capacity, problem=record.get("problem"), as_of=as_of)
        node_usd = float(node_usd)
        usd = record.get("usd_per_hour")
        share = float(usd) / node_usd if usd is not None and node_usd else 1.0
        node = Price(node_usd, machine, "", capacity, as_of, "records")
        on_demand = None
        od = record.get("on_demand_usd_per_hour")
        if capacity == SPOT and od is not None and share:
            on_demand = Price(float(od) / share, machine, "", ON_DEMAND, as_of, "records")
        return cls(machine, capacity, share, node, on_demand, None, as_of)


@dataclass(frozen=True)
class PoolPrice:
    """A pool's node, for `cfw plan` and `cfw up`: what one node costs per hour while up."""

    pool: str
    price: JobPrice  # share 1: the whole node
    nodes: str = ""  # "0 to 10 nodes"
    note: str = ""


def no_price(machine: str, capacity: str, problem: str, as_of: str = "") -> JobPrice:
    return JobPrice(machine, capacity, problem=problem, as_of=as_of)


def quote(
    cloud: str,
    region: str | None,
    machine: str,
    *,
    spot: bool = False,
    share: float = 1.0,
    gpu_model: str | None = None,
    gpus: int = 0,
) -> JobPrice:
    """``share`` (0..1] of ``machine`` in ``region`` at spot or on-demand capacity, with
    the on-demand price of the same machine when spot. Never raises for a missing price."""
    capacity = SPOT if spot else ON_DEMAND
    share = min(1.0, max(share, 0.0)) or 1.0
    as_of = table(cloud).as_of
    if not region:
        return no_price(
            machine, capacity, f"no price for {machine}: the environment names no region", as_of
        )
    try:
        node = node_price(cloud, region, machine, spot=spot, gpu_model=gpu_model, gpus=gpus)
    except NoPrice as exc:
        return no_price(machine, capacity, exc.message, exc.as_of)
    on_demand = None
    if spot:
        try:
            on_demand = node_price(cloud, region, machine, gpu_model=gpu_model, gpus=gpus)
        except NoPrice:
            on_demand = None
    return JobPrice(node.machine, capacity, share, node, on_demand, None, node.as_of)


def format_usd(amount: float | None) -> str:
    """Dollars as people read them: $1,234, $12.30, $0.42, $0.0042, -$0.05."""
    if amount is None:
        return "$?"
    sign, value = ("-" if amount < 0 else ""), abs(amount)
    if value >= 1000:
        return f"{sign}${value:,.0f}"
    if value >= 0.1 or value == 0:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:.4f}"

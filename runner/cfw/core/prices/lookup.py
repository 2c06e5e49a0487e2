"""Machine and GPU prices: one lookup per machine, from the cloud's table.

AWS and Azure tables list each instance type / VM size per region. Google prices most
machine types per vCPU-hour and per GB-hour of memory, so a Google type's price is computed
from its shape: this module reads the shape from the type's name (``n2-highmem-8``: 8 vCPUs,
8 GB each; ``n2-custom-4-16384``) or from the table's ``shaped_machines`` (shared-core E2,
A2, G2), so that callers need pass no vCPU or memory figures and core needs no backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cfw.core.prices.tables import Layer, Table, table


@dataclass(frozen=True)
class Price:
    """The list price of one machine (or GPUs) in one region, per hour: an estimate."""

    usd_per_hour: float
    machine: str
    region: str
    capacity: str  # "spot" or "on-demand"
    as_of: str  # YYYY-MM-DD: the date the table's prices held
    source: str  # where they were transcribed or fetched from
    cloud: str = ""

    def as_dict(self, share: float = 1.0) -> dict[str, object]:
        """The ``price`` of an explained job: ``share`` of this machine, and its list price."""
        return {
            "usd_per_hour": round(self.usd_per_hour * share, 6),
            "node_usd_per_hour": round(self.usd_per_hour, 6),
            "machine": self.machine,
            "capacity": self.capacity,
            "as_of": self.as_of,
        }


class NoPrice(LookupError):
    """The table has no price for a machine in a region: callers show the message and go on.

    Not a CfwError on purpose: a missing price never stops a run or an explain.
    """

    def __init__(
        self,
        machine: str,
        region: str | None,
        as_of: str,
        *,
        spot: bool = False,
        reason: str | None = None,
    ):
        self.machine = machine
        self.region = region
        self.as_of = as_of
        self.spot = spot
        self.reason = reason
        what = f"{machine} (spot)" if spot else machine
        self.message = f"no price for {what} in {region} (prices as of {as_of})" + (
            f": {reason}" if reason else ""
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Shape:
    """What Google bills a machine type by."""

    family: str
    vcpus: float  # billed vCPUs (a shared-core e2-micro is 0.25)
    memory_gb: float
    gpu: str | None = None  # GPUs built into the type (A2, G2), priced with it
    gpus: int = 0
    premium: float = 1.0  # custom types cost the family's rates times this


def machine_price(cloud: str, region: str, machine: str, *, spot: bool = False) -> Price:
    """The hourly list price of ``machine`` (instance type, machine type, VM size) in
    ``region``, on demand or spot. Google types include their built-in GPUs (A2, G2), not
    attached ones (see :func:`node_price`). Raises :class:`NoPrice`."""
    tab = table(cloud)
    _check_region(tab, region, machine, spot)
    if tab.cloud == "gcp":
        return _google_machine(tab, region, machine, spot)
    name = _listed_name(tab, region, machine)
    found = tab.find("machines", region, name, _key(spot))
    if found is None:
        raise _missing(tab, region, machine, spot, tab.find("machines", region, name))
    return _price(tab, found[0], name, region, spot, [found[1]])


def gpu_price(cloud: str, region: str, model: str, count: int = 1, *, spot: bool = False) -> Price:
    """The hourly list price of ``count`` GPUs of ``model`` attached to a VM, where the
    cloud prices GPUs apart (Google: nvidia-tesla-t4, t4, nvidia-l4, ...). AWS and Azure
    price GPUs with the machine: use :func:`machine_price`. Raises :class:`NoPrice`."""
    tab = table(cloud)
    if tab.cloud != "gcp":
        raise ValueError(f"{tab.cloud} prices GPUs with the machine type: use machine_price")
    what = f"{count} x {model}"
    _check_region(tab, region, what, spot)
    name = _gpu_name(tab, region, model)
    found = tab.find("gpus", region, name, _key(spot))
    if found is None:
        raise _missing(tab, region, what, spot, tab.find("gpus", region, name))
    return _price(tab, count * found[0], f"{count} x {name}", region, spot, [found[1]])


def node_price(
    cloud: str,
    region: str,
    machine: str,
    *,
    spot: bool = False,
    gpu_model: str | None = None,
    gpus: int = 0,
) -> Price:
    """A VM's whole price: its machine type plus the GPUs attached to it where the cloud
    prices them apart (Google N1 + T4). GPUs built into the type are not counted twice.
    Raises :class:`NoPrice`."""
    base = machine_price(cloud, region, machine, spot=spot)
    tab = table(cloud)
    if not gpus or not gpu_model or tab.cloud != "gcp" or _built_in_gpus(tab, region, machine):
        return base
    attached = gpu_price(cloud, region, gpu_model, gpus, spot=spot)
    return Price(
        base.usd_per_hour + attached.usd_per_hour,
        f"{machine} + {attached.machine}",
        region,
        base.capacity,
        min(base.as_of, attached.as_of),
        _sources([base.source, attached.source]),
        tab.cloud,
    )


def google_shape(machine: str, tab: Table | None = None) -> Shape:
    """What a Compute Engine type is billed by; ValueError when the name says nothing the
    table can price."""
    tab = tab or table("gcp")
    shaped = tab.find("shaped_machines", machine)
    if shaped is not None:
        m = shaped[0]
        family = machine.split("-")[0]
        return Shape(family, m["vcpus"], m["memory_gb"], m.get("gpu"), m.get("gpus", 0))
    custom = _CUSTOM.match(machine)
    if custom:
        family = custom["family"] or "n1"
        if custom["ext"]:
            raise ValueError("extended memory is not priced here")
        premium = tab.find("custom_premium", family)
        if premium is None:
            raise ValueError(f"custom {family} types are not priced here")
        return Shape(family, int(custom["cpus"]), int(custom["mib"]) / 1024, premium=premium[0])
    predefined = _PREDEFINED.match(machine)
    if predefined:
        family, shape, cpus = predefined["family"], predefined["shape"], int(predefined["cpus"])
        per_cpu = tab.find("shapes", family, shape)
        if per_cpu is not None:
            return Shape(family, cpus, cpus * per_cpu[0])
        raise ValueError(f"{family}-{shape} types are not in the table")
    raise ValueError("not a machine type the table can price")


# -- helpers ---------------------------------------------------------------------------------
_PREDEFINED = re.compile(
    r"^(?P<family>[a-z][a-z0-9]*)-(?P<shape>standard|highmem|highcpu)-(?P<cpus>\d+)$"
)
_CUSTOM = re.compile(
    r"^(?:(?P<family>[a-z][a-z0-9]*)-)?custom-(?P<cpus>\d+)-(?P<mib>\d+)(?P<ext>-ext)?$"
)


def _key(spot: bool) -> str:
    return "spot" if spot else "on_demand"


def _check_region(tab: Table, region: str, what: str, spot: bool) -> None:
    if region not in tab.regions:
        raise NoPrice(
            what,
            region,
            tab.as_of,
            spot=spot,
            reason=f"the {tab.cloud} table covers {', '.join(tab.regions)}",
        )


def _missing(tab: Table, region: str, what: str, spot: bool, entry: object) -> NoPrice:
    reason = "the table has no spot price for it" if spot and entry is not None else None
    return NoPrice(what, region, tab.as_of, spot=spot, reason=reason)


def _price(
    tab: Table, usd: float, machine: str, region: str, spot: bool, layers: Iterable[Layer]
) -> Price:
    layers = list(layers)
    return Price(
        usd_per_hour=round(usd, 6),
        machine=machine,
        region=region,
        capacity="spot" if spot else "on-demand",
        as_of=min(layer.as_of for layer in layers),
        source=_sources(layer.source for layer in layers),
        cloud=tab.cloud,
    )


def _sources(sources: Iterable[str]) -> str:
    return "; ".join(dict.fromkeys(sources))


def _names(tab: Table, section: str, region: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for layer in tab.layers:
        for name in layer.data.get(section, {}).get(region, {}):
            names.setdefault(name.lower(), name)
    return names


def _listed_name(tab: Table, region: str, machine: str) -> str:
    """Azure's VM sizes are case-insensitive, and people leave out ``Standard_``."""
    if tab.find("machines", region, machine) is not None or tab.cloud != "azure":
        return machine
    names = _names(tab, "machines", region)
    key = machine.lower()
    return names.get(key) or names.get(f"standard_{key}") or machine


def _gpu_name(tab: Table, region: str, model: str) -> str:
    """Google's accelerator type for a name or a short one (t4, a100, a100-80gb, l4)."""
    names = _names(tab, "gpus", region)
    key = model.strip().lower()
    key = key.removesuffix("-40gb")
    for candidate in (key, f"nvidia-tesla-{key}", f"nvidia-{key}"):
        if candidate in names:
            return names[candidate]
    return model


def _google_machine(tab: Table, region: str, machine: str, spot: bool) -> Price:
    whole = tab.find("machines", region, machine)
    if whole is not None:  # priced as a whole machine (A3)
        found = tab.find("machines", region, machine, _key(spot))
        if found is None:
            raise _missing(tab, region, machine, spot, whole)
        return _price(tab, found[0], machine, region, spot, [found[1]])
    try:
        shape = google_shape(machine, tab)
    except ValueError as exc:
        raise NoPrice(machine, region, tab.as_of, spot=spot, reason=str(exc)) from None
    rates = tab.find("families", region, shape.family, _key(spot))
    if rates is None:
        offered = tab.find("families", region, shape.family) is not None
        reason = (
            f"the table has no spot rates for {shape.family} there"
            if spot and offered
            else f"the table has no {shape.family} rates there"
        )
        raise NoPrice(machine, region, tab.as_of, spot=spot, reason=reason)
    rate, layer = rates
    usd = (shape.vcpus * rate["vcpu"] + shape.memory_gb * rate["gb"]) * shape.premium
    layers = [layer]
    if shape.gpus and shape.gpu:
        gpu = tab.find("gpus", region, shape.gpu, _key(spot))
        if gpu is None:
            raise NoPrice(
                machine,
                region,
                tab.as_of,
                spot=spot,
                reason=f"the table has no {_key(spot).replace('_', '-')} price for its "
                f"{shape.gpu} GPUs there",
            )
        usd += shape.gpus * gpu[0]
        layers.append(gpu[1])
    return _price(tab, usd, machine, region, spot, layers)


def _built_in_gpus(tab: Table, region: str, machine: str) -> bool:
    if tab.find("machines", region, machine) is not None:
        return True
    try:
        return google_shape(machine, tab).gpus > 0
    except ValueError:
        return False

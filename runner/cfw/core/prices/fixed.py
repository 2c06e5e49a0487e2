"""What an environment costs while idle: the fixed costs of what its kind's module creates.

``data/kinds.json`` lists, per kind, what its Terraform module creates that bills with no
job running (a GKE cluster fee, a system node, the Funnel server, a registry) and what does
not (pools that scale to zero, Lambdas); the rates come from the cloud's table. Storage is
billed by what is stored, so it carries a per-GB-month rate and no hourly one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfw.core.prices.lookup import NoPrice, machine_price
from cfw.core.prices.tables import HOURS_PER_MONTH, Table, kinds, table

_PER_HOUR = {"hour": 1.0, "day": 1 / 24, "month": 1 / HOURS_PER_MONTH}


@dataclass(frozen=True)
class FixedCost:
    """One thing an idle environment pays for (or, with 0.0, does not): an estimate."""

    what: str
    usd_per_hour: float | None  # None: no price for it (see problem); 0.0: nothing while idle
    note: str = ""
    usd_per_gb_month: float | None = None  # billed by what is stored, not by the hour
    problem: str | None = None  # the NoPrice message when usd_per_hour is None
    as_of: str | None = None


def fixed_costs(
    kind: str, region: str | None, settings: Mapping[str, Any] | None = None
) -> list[FixedCost]:
    """The idle costs of an environment of ``kind`` in ``region``.

    ``settings`` are the environment's config fields (e.g. ``config.model_dump()``); the
    ones an item depends on (gke: ``system_machine_type``; tes: ``url``, ``instance_type``,
    ``credentials_store``, ``users``; azure-batch: ``registry.create_acr``; google-batch:
    ``external_ip``) default to the kind's defaults, the others are ignored. A price the
    table lacks gives an item with ``usd_per_hour=None`` and its ``problem``. ValueError for
    a kind the table does not list.
    """
    spec = kinds().get(kind)
    if spec is None:
        raise ValueError(f"no fixed costs are listed for kind {kind!r} (data/kinds.json)")
    values = {**spec.get("settings", {}), **(settings or {})}
    tab = table(spec["cloud"]) if spec.get("cloud") else None
    costs = []
    for item in spec["items"]:
        if not all(_holds(values, cond) for cond in _conditions(item.get("when"))):
            continue
        what = item["what"].format_map(_Formatter(values))
        costs.append(_cost(item, what, values, tab, region))
    return costs


def idle_usd_per_hour(costs: Iterable[FixedCost]) -> float:
    """The sum of the hourly costs that have a price (storage and missing prices aside)."""
    return round(sum(c.usd_per_hour or 0.0 for c in costs), 6)


def _cost(
    item: dict[str, Any], what: str, values: dict[str, Any], tab: Table | None, region: str | None
) -> FixedCost:
    note = item.get("note", "")
    if "free" in item:
        return FixedCost(what, 0.0, item["free"])
    if tab is None:
        raise ValueError(f"kinds.json: {what!r} has a price but its kind names no cloud")
    count = _count(values, item.get("count", 1))
    if not region:
        problem = f"no price for {what}: the environment names no region"
        return FixedCost(what, None, note, problem=problem, as_of=tab.as_of)
    if "machine" in item:
        machine = str(_get(values, item["machine"]))
        try:
            price = machine_price(tab.cloud, region or "", machine)
        except NoPrice as exc:
            return FixedCost(what, None, note, problem=exc.message, as_of=tab.as_of)
        return FixedCost(what, round(price.usd_per_hour * count, 6), note, as_of=price.as_of)
    rate = _rate(tab, region, item["rate"])
    if rate is None:
        problem = NoPrice(what, region, tab.as_of).message
        return FixedCost(what, None, note, problem=problem, as_of=tab.as_of)
    (entry, layer) = rate
    usd, per = float(entry["usd"]), entry["per"]
    if per == "GB-month":
        if "gb" not in item:  # billed by what is stored
            return FixedCost(what, 0.0, note, usd_per_gb_month=usd, as_of=layer.as_of)
        hourly = usd * item["gb"] / HOURS_PER_MONTH
    else:
        hourly = usd * _PER_HOUR[per]
    return FixedCost(what, round(hourly * count, 6), note, as_of=layer.as_of)


def _rate(tab: Table, region: str | None, name: str):
    if region is None or region not in tab.regions:
        return None
    return tab.find("fixed", region, name) or tab.find("fixed", "*", name)


def _conditions(when: str | list[str] | None) -> list[str]:
    if when is None:
        return []
    return [when] if isinstance(when, str) else list(when)


def _holds(values: dict[str, Any], condition: str) -> bool:
    if condition.startswith("!"):
        return not _get(values, condition[1:])
    key, eq, expected = condition.partition("=")
    return str(_get(values, key)) == expected if eq else bool(_get(values, key))


def _get(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
    return node


def _count(values: dict[str, Any], count: int | str) -> int:
    if isinstance(count, int):
        return count
    value = _get(values, count)
    return len(value) if isinstance(value, list | tuple | set) else int(value or 0)


class _Formatter(dict):
    def __init__(self, values: dict[str, Any]):
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"

"""What users read about money: an environment's idle cost and its pools' node prices
(`cfw plan`, `cfw up`), its cost so far (`cfw status`), and a run's estimated cost (the end
of `cfw run`). Every figure is an ESTIMATE from public list prices, and says so.

Nothing here needs credentials or the cloud: fixed costs and node prices come from the
environment's config and the price tables, a run's cost from its records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cfw.backends.kind import Kind
from cfw.core.prices import FixedCost, PoolPrice, format_usd, idle_usd_per_hour
from cfw.core.records import RunInfo

ESTIMATE = "an estimate, not a bill"


@dataclass(frozen=True)
class EnvCosts:
    """An environment's fixed costs and the node prices of its pools, from its config."""

    kind: str
    region: str | None
    fixed: list[FixedCost]
    pools: list[PoolPrice]
    as_of: str | None

    @property
    def idle_usd_per_hour(self) -> float:
        return idle_usd_per_hour(self.fixed)


def environment_costs(kind: Kind, config: Any) -> EnvCosts:
    try:
        fixed = kind.fixed_costs(config)
    except ValueError:
        fixed = []
    pools = kind.pool_prices(config)
    dates = sorted(
        {c.as_of for c in fixed if c.as_of} | {p.price.as_of for p in pools if p.price.as_of}
    )
    return EnvCosts(kind.name, kind.price_region(config), fixed, pools, dates[0] if dates else None)


def _per_hour(usd: float) -> str:
    """An hourly rate, to three significant figures below $10 ($0.134/hour)."""
    if 0 < usd < 10:
        digits = 4 if usd < 0.1 else 3
        return f"${usd:.{digits}f}/hour"
    return f"{format_usd(usd)}/hour"


def environment_lines(name: str, costs: EnvCosts) -> list[str]:
    """The lines `cfw plan` and `cfw up` show: the idle cost, its items, each pool's node."""
    idle = costs.idle_usd_per_hour
    dated = f"list prices as of {costs.as_of}; " if costs.as_of else ""
    missing = sum(item.usd_per_hour is None for item in costs.fixed)
    about = f"at least {_per_hour(idle)}" if missing else f"about {_per_hour(idle)}"
    unpriced = f"{missing} item(s) have no price; " if missing else ""
    lines = [
        f"{name} costs {about} while idle "
        f"(~{format_usd(idle * 730)} a month; {unpriced}{dated}{ESTIMATE})"
        if costs.as_of or missing or idle
        else f"{name} costs nothing cfw can price while idle"  # no cloud's prices (local)
    ]
    for item in costs.fixed:
        if item.usd_per_hour is None:
            lines.append(f"  {item.what}: {item.problem}")
        elif item.usd_per_gb_month is not None:
            lines.append(f"  {item.what}: {format_usd(item.usd_per_gb_month)} per GB-month stored")
        elif item.usd_per_hour == 0:
            lines.append(f"  {item.what}: nothing while idle ({item.note})" if item.note else "")
        else:
            lines.append(f"  {item.what}: {_per_hour(item.usd_per_hour)}")
    lines = [line for line in lines if line]
    if costs.pools:
        lines.append("node prices (a job pays its share of a node while it runs):")
        for pool in costs.pools:
            price = pool.price
            rate = (
                f"{_per_hour(price.usd_per_hour)} per node"
                if price.usd_per_hour is not None
                else price.problem
            )
            extra = ", ".join(x for x in (pool.nodes, pool.note) if x)
            lines.append(
                f"  pool {pool.pool}: {price.machine}, {price.capacity}: {rate}"
                + (f" ({extra})" if extra else "")
            )
    elif costs.as_of:  # a cloud's prices (not local, not a TES server cfw did not make)
        lines.append(
            "jobs: each is priced by `cfw run --explain` (the machine it gets, by the hour)"
        )
    return lines


# -- status -----------------------------------------------------------------------------------
def cost_so_far(
    costs: EnvCosts, created: datetime | None, now: datetime, runs: Iterable[RunInfo], up: bool
) -> dict[str, Any]:
    """Fixed cost times age (while up) plus the jobs of the runs since it was created."""
    hours = (now - created).total_seconds() / 3600 if created and up else 0.0
    since = [r for r in runs if created is None or _started(r, now) >= created]
    runs_usd = sum(float((r.cost or {}).get("jobs_usd") or 0.0) for r in since)
    fixed_usd = costs.idle_usd_per_hour * max(0.0, hours)
    dates = sorted({str(r.cost["as_of"]) for r in since if r.cost and r.cost.get("as_of")})
    if costs.as_of:
        dates = sorted({*dates, costs.as_of})
    return {
        "estimate": True,
        "currency": "USD",
        "as_of": dates[0] if dates else None,
        "total_usd": round(fixed_usd + runs_usd, 6),
        "fixed_usd": round(fixed_usd, 6),
        "fixed_usd_per_hour": round(costs.idle_usd_per_hour, 6),
        "runs_usd": round(runs_usd, 6),
        "runs": [
            {"run_id": r.run_id, "started": r.started, "outcome": r.outcome, "cost": r.cost}
            for r in since
        ],
    }


def _started(run: RunInfo, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(run.started)
    except (TypeError, ValueError):
        return default


# -- a run ------------------------------------------------------------------------------------
def _duration(hours: float) -> str:
    minutes = round(hours * 60)
    if minutes < 1:
        return f"{round(hours * 3600)}s"
    return f"{minutes}m" if minutes < 120 else f"{hours:.1f}h"


def run_lines(run_id: str, cost: dict[str, Any] | None) -> list[str]:
    """The end of `cfw run`: its estimated cost, the most expensive rules, spot savings."""
    if not cost:
        return []
    priced = ("as_of", "attempts", "fixed_usd_per_hour", "unpriced")
    if not any(cost.get(key) for key in priced):  # local: nothing has a price at all
        return [f"run {run_id} cost nothing in a cloud: its jobs ran where nothing is priced"]
    dated = f"prices as of {cost['as_of']}; " if cost.get("as_of") else ""
    lines = [
        f"run {run_id} cost an estimated {format_usd(cost['total_usd'])}: jobs "
        f"{format_usd(cost['jobs_usd'])} ({_duration(cost['job_hours'])} of job time), fixed costs "
        f"{format_usd(cost['fixed_usd'])} over {_duration(cost['hours'])} "
        f"({dated}{ESTIMATE})"
    ]
    top = cost.get("top_rules") or []
    if top and cost["jobs_usd"] > 0:
        lines.append(
            "most expensive rules (estimates): "
            + ", ".join(
                f"{r['rule']} {format_usd(r['usd'])} ({r['jobs']} job{'s' * (r['jobs'] != 1)})"
                for r in top
            )
        )
    spot = cost.get("spot")
    if spot:
        lost = (
            f"; {spot['preempted']} preempted, {format_usd(spot['preempted_usd'])} of it lost"
            if spot["preempted"]
            else ""
        )
        lines.append(
            f"spot saved an estimated {format_usd(spot['saved_usd'])} against on-demand "
            f"prices ({spot['attempts']} spot attempt(s) cost {format_usd(spot['usd'])}{lost})"
        )
    unpriced = cost.get("unpriced")
    if unpriced:
        problem = (unpriced.get("problems") or ["no price"])[0]
        lines.append(
            f"{unpriced['attempts']} job attempt(s) of {', '.join(unpriced['rules'])} had no "
            f"price and are not counted: {problem}"
        )
    return lines


def budget_line(run_id: str, cost: dict[str, Any] | None, stopped: bool = True) -> str | None:
    """Why the budget stopped the run and what it cost; with ``stopped`` False, that the
    run passed it while its last jobs ran (nothing was held back). None: not passed."""
    budget = (cost or {}).get("budget")
    if not cost or not budget or not budget.get("passed"):
        return None
    spent = (
        f"its jobs cost an estimated {format_usd(cost['jobs_usd'])} "
        f"({format_usd(cost['total_usd'])} with fixed costs)"
    )
    if not stopped:
        return (
            f"run {run_id} passed its budget of {format_usd(budget['usd'])} while its last "
            f"jobs ran: {spent}"
        )
    held = []
    if budget.get("not_submitted"):
        held.append(f"{budget['not_submitted']} job(s) not submitted")
    if budget.get("cancelled"):
        held.append(f"{budget['cancelled']} cancelled")
    return f"the budget of {format_usd(budget['usd'])} stopped run {run_id}: {spent}" + (
        f"; {', '.join(held)}" if held else ""
    )

"""What a run costs, as it goes and when it ends: an ESTIMATE from list prices, never a bill.

Every attempt of a job is priced when it is submitted (its kind's :meth:`Kind.price`: its
share of the machine it gets, at spot or on-demand capacity) and costs that price times
its wall time: from when a poll first saw it running (or, for a job that succeeded
between two polls, from its submission) to when it finished. An attempt never seen
running that failed or was cancelled cost nothing. The run adds the environment's fixed
cost per hour over its duration. Spot savings compare each spot attempt with the
on-demand price of the same machine; an attempt that was preempted saved nothing and
its cost counts against the savings.

``CFW_PRICE_OVERRIDE`` replaces the kinds' prices with flat ones (executor/override.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.kind import Kind
from cfw.core.prices import ON_DEMAND, SPOT, JobPrice, idle_usd_per_hour
from cfw.executor.override import PriceOverride

TOP_RULES = 5
Pricer = Callable[[JobSpec], JobPrice | None]


# -- prices -----------------------------------------------------------------------------------
def job_pricer(kind: Kind, ctx: EnvContext, flat: PriceOverride | None = None) -> Pricer:
    """A function that prices a job for ``kind`` and never raises: a price the tables
    lack, or a bug in a kind's pricing, is a JobPrice with its problem, never a failed
    submission."""

    def price(spec: JobSpec) -> JobPrice | None:
        if flat is not None:
            return flat.price(spec)
        try:
            return kind.price(spec, ctx)
        except Exception as exc:
            capacity = SPOT if spec.preemptible else ON_DEMAND
            return JobPrice("?", capacity, problem=f"no price: {exc}")

    return price


def fixed_usd_per_hour(kind: Kind, config: Any, flat: PriceOverride | None = None) -> float:
    """The environment's cost per hour while idle (0.0 where the tables lack a price)."""
    if flat is not None:
        return flat.fixed_usd_per_hour
    try:
        return idle_usd_per_hour(kind.fixed_costs(config))
    except ValueError:  # a kind without listed fixed costs
        return 0.0


# -- attempts ---------------------------------------------------------------------------------
class TrackedLike(Protocol):
    """What the cost needs of a tracked job (executor/tracker.py: TrackedJob)."""

    jobid: int
    rule: str
    attempt: int
    submitted: float
    started: float | None
    finished: float | None
    reason: str | None
    price: JobPrice | None


@dataclass(frozen=True)
class Attempt:
    """One submission of one job, with what the cost needs."""

    rule: str
    jobid: int
    attempt: int
    price: JobPrice | None
    submitted: float
    started: float | None = None
    finished: float | None = None
    state: str | None = None  # succeeded, failed, cancelled; None while open
    preempted: bool = False

    def hours(self, now: float) -> float:
        start = self.started
        if start is None:
            if self.state != "succeeded":
                return 0.0  # never seen running: pending, or cancelled before it started
            start = self.submitted  # ran between two polls
        end = self.finished if self.finished is not None else now
        return max(0.0, end - start) / 3600

    def usd(self, now: float) -> float | None:
        rate = None if self.price is None else self.price.usd_per_hour
        return None if rate is None else rate * self.hours(now)

    def on_demand_usd(self, now: float) -> float | None:
        rate = None if self.price is None else self.price.on_demand_usd_per_hour
        return None if rate is None else rate * self.hours(now)


def is_preempted(reason: str | None, flagged: object = None) -> bool:
    return bool(flagged) or "preempt" in (reason or "").lower()


def attempt_of(job: TrackedLike) -> Attempt:
    state = getattr(job, "state", None)
    finished = state is not None and state.finished
    return Attempt(
        rule=job.rule,
        jobid=job.jobid,
        attempt=job.attempt,
        price=job.price,
        submitted=job.submitted,
        started=job.started,
        finished=job.finished if finished else None,
        state=state.value if finished else None,
        preempted=finished and is_preempted(job.reason, getattr(job, "preempted", None)),
    )


FINISHING = {"succeeded", "failed", "cancelled", "preempted"}


def attempts_from_records(records: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    """The attempts of a run from its jobs.jsonl events (``t``: seconds since the epoch)."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        ext, event = record.get("external_id"), record.get("event")
        if ext is None or "t" not in record:
            continue
        if event == "submitted":
            price = record.get("price")
            found[ext] = {
                "rule": record.get("rule", "?"),
                "jobid": int(record.get("jobid", 0)),
                "attempt": int(record.get("attempt", 1)),
                "price": JobPrice.from_record(price) if isinstance(price, dict) else None,
                "submitted": float(record["t"]),
            }
        elif ext in found and event == "started":
            found[ext].setdefault("started", float(record["t"]))
        elif ext in found and event in FINISHING and "finished" not in found[ext]:
            state = "failed" if event == "preempted" else event
            found[ext].update(finished=float(record["t"]), state=state)
            found[ext]["preempted"] = event == "preempted" or is_preempted(record.get("reason"))
    return [Attempt(**fields) for fields in found.values()]


# -- the summary ------------------------------------------------------------------------------
def _round(value: float) -> float:
    return round(value, 6)


def jobs_usd(attempts: Iterable[Attempt], now: float) -> float:
    return sum(a.usd(now) or 0.0 for a in attempts)


def summarize(
    attempts: Iterable[Attempt],
    *,
    fixed_usd_per_hour: float,
    started: float,
    now: float,
    top: int = TOP_RULES,
) -> dict[str, Any]:
    """The run's estimated cost: jobs (wall time x price), the fixed cost over the run's
    duration, the most expensive rules, spot savings, and what had no price."""
    attempts = list(attempts)
    priced = [a for a in attempts if a.price is not None and a.price.usd_per_hour is not None]
    unpriced = [a for a in attempts if a.price is not None and a.price.usd_per_hour is None]
    hours = max(0.0, now - started) / 3600
    jobs = jobs_usd(priced, now)
    fixed = fixed_usd_per_hour * hours
    by_rule: dict[str, dict[str, Any]] = {}
    for a in priced:
        entry = by_rule.setdefault(a.rule, {"rule": a.rule, "usd": 0.0, "jobs": set(), "hours": 0})
        entry["usd"] += a.usd(now) or 0.0
        entry["hours"] += a.hours(now)
        entry["jobs"].add(a.jobid)
    ranked = sorted(by_rule.values(), key=lambda e: (-e["usd"], e["rule"]))[:top]
    dates = sorted({a.price.as_of for a in priced if a.price and a.price.as_of})
    return {
        "estimate": True,
        "currency": "USD",
        "as_of": dates[0] if dates else None,
        "total_usd": _round(jobs + fixed),
        "jobs_usd": _round(jobs),
        "fixed_usd": _round(fixed),
        "fixed_usd_per_hour": _round(fixed_usd_per_hour),
        "hours": _round(hours),
        "job_hours": _round(sum(a.hours(now) for a in priced)),
        "attempts": len(priced),
        "running": sum(a.state is None and a.started is not None for a in priced),
        "top_rules": [
            {
                "rule": e["rule"],
                "usd": _round(e["usd"]),
                "jobs": len(e["jobs"]),
                "hours": _round(e["hours"]),
            }
            for e in ranked
        ],
        "spot": _spot(priced, now),
        "unpriced": _unpriced(unpriced),
    }


def _spot(priced: list[Attempt], now: float) -> dict[str, Any] | None:
    """What spot saved: the on-demand price of the work spot attempts completed, less
    what every spot attempt cost (a preempted one completed nothing)."""
    spot = [a for a in priced if a.price and a.price.spot]
    if not spot:
        return None
    usd = sum(a.usd(now) or 0.0 for a in spot)
    comparable = [a for a in spot if a.on_demand_usd(now) is not None]
    on_demand = sum(a.on_demand_usd(now) or 0.0 for a in comparable if not a.preempted)
    preempted = [a for a in spot if a.preempted]
    return {
        "attempts": len(spot),
        "usd": _round(usd),
        "on_demand_usd": _round(on_demand),
        "saved_usd": _round(on_demand - sum(a.usd(now) or 0.0 for a in comparable)),
        "preempted": len(preempted),
        "preempted_usd": _round(sum(a.usd(now) or 0.0 for a in preempted)),
    }


def _unpriced(unpriced: list[Attempt]) -> dict[str, Any] | None:
    if not unpriced:
        return None
    problems = sorted({a.price.problem for a in unpriced if a.price and a.price.problem})
    return {
        "attempts": len(unpriced),
        "rules": sorted({a.rule for a in unpriced}),
        "problems": problems[:3],
    }


# -- the budget -------------------------------------------------------------------------------
@dataclass
class Budget:
    """A run's budget: once the jobs' running estimate passes ``usd``, no job is submitted
    (and, with ``action`` cancel, the running ones are cancelled)."""

    usd: float
    action: str = "finish"  # or "cancel"
    passed_at_usd: float | None = None
    not_submitted: int = 0
    cancelled: int = 0

    @property
    def passed(self) -> bool:
        return self.passed_at_usd is not None

    @property
    def stopped_something(self) -> bool:
        return self.not_submitted > 0 or self.cancelled > 0

    def check(self, spent_usd: float) -> bool:
        """True the one time the estimate passes the budget."""
        if self.passed or spent_usd <= self.usd:
            return False
        self.passed_at_usd = spent_usd
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "usd": self.usd,
            "action": self.action,
            "passed": self.passed,
            "passed_at_usd": None if self.passed_at_usd is None else _round(self.passed_at_usd),
            "not_submitted": self.not_submitted,
            "cancelled": self.cancelled,
        }


class RunCost:
    """The cost of one run as it goes, kept by the run's tracker: every attempt is priced
    at submission, and finished attempts' dollars are summed as they finish, so that the
    budget's check looks at the open jobs only."""

    def __init__(
        self,
        pricer: Pricer,
        fixed_usd_per_hour: float,
        started: float,
        budget: Budget | None = None,
    ):
        self.pricer = pricer
        self.fixed_usd_per_hour = fixed_usd_per_hour
        self.started = started
        self.budget = budget
        self.finished_usd = 0.0
        self._open: dict[int, TrackedLike] = {}

    def submitted(self, spec: JobSpec, job: TrackedLike) -> JobPrice | None:
        """Price an attempt that has just been submitted (and keep it among the open)."""
        job.price = self.pricer(spec)
        self._open[id(job)] = job
        return job.price

    def finished(self, job: TrackedLike) -> None:
        """An attempt has just finished: its dollars join the finished ones."""
        self._open.pop(id(job), None)
        self.finished_usd += attempt_of(job).usd(job.finished or 0.0) or 0.0

    def spent(self, now: float) -> float:
        """The jobs' running estimate: finished attempts, plus running ones so far (a look
        at the open attempts only)."""
        return self.finished_usd + jobs_usd((attempt_of(j) for j in self._open.values()), now)

    def summary(self, jobs: Iterable[TrackedLike], now: float) -> dict[str, Any]:
        summary = summarize(
            (attempt_of(j) for j in jobs),
            fixed_usd_per_hour=self.fixed_usd_per_hour,
            started=self.started,
            now=now,
        )
        if self.budget is not None:
            summary["budget"] = self.budget.as_dict()
        return summary

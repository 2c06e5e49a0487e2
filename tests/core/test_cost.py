"""A run's estimated cost: attempts times their prices, fixed costs over the run, the most
expensive rules, spot savings from each attempt's capacity, what had no price; the same
numbers from the tracker as from the run's records; the budget and the price override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfw.backends.base import JobState
from cfw.core import prices
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice, Price, format_usd
from cfw.core.records import RunLog, job_records, read_run
from cfw.executor.cost import Attempt, Budget, RunCost, attempts_from_records, summarize
from cfw.executor.override import OVERRIDE_VAR, PriceOverride, override
from cfw.executor.tracker import RunTracker
from support.builders import job_spec

H = 3600.0
T0 = 1_000_000.0


def price(usd: float, *, spot_usd: float | None = None, share: float = 1.0) -> JobPrice:
    """A machine at ``usd`` an hour on demand (``spot_usd`` on spot), ``share`` of it."""
    on_demand = Price(usd, "m1.test", "r1", "on-demand", "2024-06-01", "test")
    if spot_usd is None:
        return JobPrice("m1.test", "on-demand", share, on_demand, None, None, "2024-06-01")
    spot = Price(spot_usd, "m1.test", "r1", "spot", "2024-06-01", "test")
    return JobPrice("m1.test", "spot", share, spot, on_demand, None, "2024-06-01")


def attempt(rule, jobid, start_h, end_h, p, *, n=1, state="succeeded", preempted=False):
    return Attempt(
        rule, jobid, n, p, T0 + start_h * H - 60, T0 + start_h * H, T0 + end_h * H, state, preempted
    )


# -- attempts -----------------------------------------------------------------------------------
def test_an_attempt_costs_its_share_of_the_price_times_its_wall_time():
    a = attempt("align", 1, 0, 2.5, price(0.4, share=0.25))
    assert a.hours(T0 + 10 * H) == pytest.approx(2.5)
    assert a.usd(T0 + 10 * H) == pytest.approx(0.4 * 0.25 * 2.5)


def test_an_attempt_never_seen_running():
    p = price(1.0)
    # succeeded between two polls: from its submission
    quick = Attempt("a", 1, 1, p, T0, None, T0 + 0.5 * H, "succeeded")
    assert quick.usd(T0 + H) == pytest.approx(0.5)
    # cancelled or failed while pending, or still pending: nothing
    for state, finished in (("cancelled", T0 + H), ("failed", T0 + H), (None, None)):
        assert Attempt("a", 1, 1, p, T0, None, finished, state).usd(T0 + 2 * H) == 0.0
    # running: so far
    running = Attempt("a", 1, 1, p, T0, T0 + H, None, None)
    assert running.usd(T0 + 3 * H) == pytest.approx(2.0)


# -- the summary --------------------------------------------------------------------------------
def test_summary_jobs_fixed_costs_and_the_five_most_expensive_rules():
    attempts = [attempt(f"r{i}", i, 0, i, price(1.0)) for i in range(1, 8)]  # r7 costs $7
    attempts.append(attempt("r1", 11, 1, 2, price(1.0)))  # r1: two jobs, $2
    summary = summarize(attempts, fixed_usd_per_hour=0.5, started=T0 - 60, now=T0 + 10 * H - 60)
    assert summary["estimate"] is True and summary["currency"] == "USD"
    assert summary["jobs_usd"] == pytest.approx(sum(range(1, 8)) + 1)
    assert summary["fixed_usd"] == pytest.approx(0.5 * 10)
    assert summary["total_usd"] == pytest.approx(summary["jobs_usd"] + summary["fixed_usd"])
    assert summary["hours"] == pytest.approx(10)
    assert [r["rule"] for r in summary["top_rules"]] == ["r7", "r6", "r5", "r4", "r3"]
    assert summary["top_rules"][0] == {"rule": "r7", "usd": 7.0, "jobs": 1, "hours": 7.0}
    assert summary["as_of"] == "2024-06-01"
    assert summary["spot"] is None and summary["unpriced"] is None


def test_spot_savings_come_from_each_attempts_capacity():
    spot = price(0.10, spot_usd=0.03)
    attempts = [
        # job 1: preempted on spot after 1 h, then on demand for 1 h (issue 12's fallback)
        attempt("align", 1, 0, 1, spot, state="failed", preempted=True),
        attempt("align", 1, 1, 2, price(0.10), n=2),
        # job 2: 2 h on spot, never preempted
        attempt("sort", 2, 0, 2, spot),
    ]
    summary = summarize(attempts, fixed_usd_per_hour=0.0, started=T0, now=T0 + 2 * H)
    assert summary["jobs_usd"] == pytest.approx(0.03 + 0.10 + 0.06)
    assert summary["spot"] == {
        "attempts": 2,
        "usd": pytest.approx(0.09),
        "on_demand_usd": pytest.approx(0.20),  # the work spot completed, at on-demand prices
        "saved_usd": pytest.approx(0.20 - 0.09),  # less every spot attempt, the preempted too
        "preempted": 1,
        "preempted_usd": pytest.approx(0.03),
    }


def test_spot_that_was_always_preempted_saved_less_than_nothing():
    spot = price(0.10, spot_usd=0.03)
    attempts = [
        attempt("a", 1, 0, 1, spot, state="failed", preempted=True),
        attempt("a", 1, 1, 2, price(0.10), n=2),
    ]
    summary = summarize(attempts, fixed_usd_per_hour=0.0, started=T0, now=T0 + 2 * H)
    assert summary["spot"]["saved_usd"] == pytest.approx(-0.03)


def test_what_had_no_price_is_listed_and_not_counted():
    missing = JobPrice("zz9.large", "on-demand", problem="no price for zz9.large in us-east-1")
    attempts = [attempt("a", 1, 0, 1, price(1.0)), attempt("b", 2, 0, 5, missing)]
    summary = summarize(attempts, fixed_usd_per_hour=0.0, started=T0, now=T0 + 5 * H)
    assert summary["jobs_usd"] == pytest.approx(1.0)
    assert summary["unpriced"] == {
        "attempts": 1,
        "rules": ["b"],
        "problems": ["no price for zz9.large in us-east-1"],
    }


def test_a_price_survives_the_records():
    for p in (price(0.4, share=0.25), price(0.1, spot_usd=0.03, share=0.5)):
        back = JobPrice.from_record(json.loads(json.dumps(p.as_record())))
        assert back.usd_per_hour == pytest.approx(p.usd_per_hour)
        assert back.on_demand_usd_per_hour == pytest.approx(p.on_demand_usd_per_hour)
        assert (back.capacity, back.machine, back.as_of) == (p.capacity, p.machine, p.as_of)
    gone = JobPrice.from_record({"usd_per_hour": None, "capacity": "spot", "problem": "no"})
    assert gone.usd_per_hour is None and gone.problem == "no"


# -- the tracker writes what the records say ----------------------------------------------------
class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_tracker_and_the_records_give_the_same_estimate(tmp_path: Path):
    clock = Clock()
    rates = {"align": price(0.4, share=0.5), "call": price(0.2, spot_usd=0.05)}
    cost = RunCost(lambda spec: rates[spec.rule], 0.25, started=T0)
    tracker = RunTracker(RunLog(tmp_path / "run", "env", "r1"), clock=clock, cost=cost)
    tracker.submitted(job_spec("align", 1), "x1")
    tracker.submitted(job_spec("call", 2, preemptible=True), "x2")
    clock.t += 60
    tracker.seen("x1", JobState.RUNNING)
    tracker.seen("x2", JobState.RUNNING)
    clock.t += 2 * H
    tracker.succeeded("x1", 1)
    assert tracker.spent_usd() == pytest.approx(0.2 * 2 + 0.05 * 2)  # x2 still running
    clock.t += H
    tracker.failed("x2", 2, "preempted: its machine was reclaimed (PREEMPTED)", None)
    rates["call"] = price(0.2)  # the retry's own price, taken when it is submitted
    tracker.submitted(job_spec("call", 2, attempt=2), "x3")  # again, on demand
    clock.t += H
    tracker.finish("success")

    run = read_run(tmp_path / "run")
    records = job_records(tmp_path / "run")
    again = summarize(
        attempts_from_records(records), fixed_usd_per_hour=0.25, started=T0, now=clock.t
    )
    assert run.cost == again
    assert run.cost["jobs_usd"] == pytest.approx(0.4 + 0.15)  # x3 never ran
    assert run.cost["fixed_usd"] == pytest.approx(0.25 * (4 * H + 60) / H)
    assert run.cost["spot"]["preempted"] == 1
    submitted = [r for r in records if r["event"] == "submitted"]
    assert submitted[1]["price"]["on_demand_usd_per_hour"] == pytest.approx(0.2)
    finished = {r["external_id"]: r for r in records if r["event"] in ("succeeded", "failed")}
    assert finished["x1"]["usd"] == pytest.approx(0.4) and "t" in finished["x1"]


def test_a_tracker_without_prices_records_no_cost(tmp_path: Path):
    tracker = RunTracker(RunLog(tmp_path / "run", "env", "r1"), clock=Clock())
    tracker.submitted(job_spec("a", 1), "x1")
    tracker.succeeded("x1", 1)
    tracker.finish("success")
    assert read_run(tmp_path / "run").cost is None and tracker.spent_usd() == 0.0
    assert "price" not in job_records(tmp_path / "run")[0]


# -- the budget ---------------------------------------------------------------------------------
def test_a_budget_is_passed_once_when_the_estimate_goes_above_it():
    budget = Budget(10.0)
    assert not budget.check(10.0) and not budget.passed  # reaching it is not passing it
    assert budget.check(10.01) and budget.passed and budget.passed_at_usd == 10.01
    assert not budget.check(50.0) and budget.passed_at_usd == 10.01
    assert not budget.stopped_something
    budget.not_submitted += 1
    assert budget.stopped_something
    assert budget.as_dict()["passed"] is True and budget.as_dict()["action"] == "finish"


# -- the price override (local's prices in tests, or your own rates) -------------------------
def test_the_override_prices_every_job_and_its_rules(tmp_path: Path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "as_of": "2025-01-01",
                "usd_per_hour": 2.0,
                "spot_usd_per_hour": 0.5,
                "rules": {"cheap": {"usd_per_hour": 0.0}},
                "fixed_usd_per_hour": 0.1,
            }
        )
    )
    flat = override({OVERRIDE_VAR: str(path)})
    assert isinstance(flat, PriceOverride) and flat.fixed_usd_per_hour == 0.1
    assert flat.price(job_spec("x")).as_dict()["usd_per_hour"] == 2.0
    spot = flat.price(job_spec("x", preemptible=True))
    assert (spot.usd_per_hour, spot.on_demand_usd_per_hour, spot.capacity) == (0.5, 2.0, "spot")
    assert flat.price(job_spec("cheap")).usd_per_hour == 0.0
    assert flat.price(job_spec("x")).as_of == "2025-01-01"
    assert override({}) is None


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"usd_per_hour": "lots"}'])
def test_a_broken_override_is_a_user_mistake(tmp_path: Path, text: str):
    path = tmp_path / "prices.json"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        override({OVERRIDE_VAR: str(path)})
    assert OVERRIDE_VAR in caught.value.message and "\n" not in str(caught.value)


def test_dollars_as_people_read_them():
    cases = {1234.5: "$1,234", 12.3: "$12.30", 0.42: "$0.42", 0.0042: "$0.0042", 0: "$0.00"}
    for amount, text in cases.items():
        assert format_usd(amount) == text
    assert format_usd(-0.05) == "-$0.0500" and format_usd(None) == "$?"


def test_a_quote_of_a_region_the_table_lacks_says_so(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CFW_PRICES_DIR", str(tmp_path))
    prices.reload()
    job = prices.quote("aws", "ap-south-1", "m5.large", spot=True)
    assert job.usd_per_hour is None and job.capacity == "spot"
    assert job.problem.startswith("no price for m5.large (spot) in ap-south-1")
    assert job.as_dict()["problem"] == job.problem and job.as_dict()["usd_per_hour"] is None
    nowhere = prices.quote("aws", None, "m5.large")
    assert nowhere.problem == "no price for m5.large: the environment names no region"
    prices.reload()

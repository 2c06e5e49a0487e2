"""What users read about money: `cfw plan` and `cfw up` (the idle cost and each pool's node
price, for every kind from its example config, with no credentials), the end of `cfw run`
(its estimated cost, the most expensive rules, spot savings, a budget), and `cfw status`
(the cost so far). Every line says it is an estimate."""

from __future__ import annotations

import copy
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.backends.registry import get_kind, kind_names, resolve
from cfw.core.records import RunInfo
from cfw.orchestration import costs
from conftest import run_cfw
from support.prices import shipped_tables  # noqa: F401
from support.render import GOLDEN_OVERRIDES

pytestmark = pytest.mark.usefixtures("shipped_tables")
CREDENTIALS = re.compile(r"^(AWS_|GOOGLE_|CLOUDSDK_|GCLOUD_|AZURE_|ARM_|AZ_BATCH_)")
EXAMPLES = Path(__file__).resolve().parents[2] / "environments"
NOTHING_PRICED = {"local", "kubernetes"}  # this machine; a cluster cfw did not create


@pytest.fixture
def no_credentials(monkeypatch):
    for name in list(os.environ):
        if CREDENTIALS.match(name):
            monkeypatch.delenv(name)


def example(kind: str):
    """The kind's example environment, as `cfw plan` resolves it (no cloud is asked)."""
    return resolve(EXAMPLES.parent, kind, overrides=GOLDEN_OVERRIDES.get(kind, []))


@pytest.mark.parametrize("kind", kind_names())
def test_plan_and_up_cost_lines_render_for_every_kind_without_credentials(kind, no_credentials):
    resolved = example(kind)
    estimate = costs.environment_costs(resolved.kind, resolved.config)
    lines = costs.environment_lines(kind, estimate)
    text = "\n".join(lines)
    headline = lines[0]
    assert "no price" not in text, text  # the example configs are in the tables' regions
    for item in estimate.fixed:
        assert item.what in text
    if kind in NOTHING_PRICED:  # no cloud cfw knows the prices of
        assert headline == f"{kind} costs nothing cfw can price while idle"
        assert estimate.idle_usd_per_hour == 0 and not estimate.pools
        return
    assert headline.startswith(f"{kind} costs about $") and "/hour while idle" in headline
    assert "list prices as of 2024-06-01; an estimate, not a bill" in headline
    for pool in estimate.pools:
        assert f"pool {pool.pool}: {pool.price.machine}, {pool.price.capacity}: $" in text
    if not estimate.pools and estimate.as_of:
        assert "each is priced by `cfw run --explain`" in text


def test_the_idle_cost_is_the_sum_of_its_items():
    resolved = example("gke")
    estimate = costs.environment_costs(resolved.kind, resolved.config)
    total = sum(item.usd_per_hour or 0 for item in estimate.fixed)
    assert estimate.idle_usd_per_hour == pytest.approx(total) and total > 0.1  # the cluster fee
    headline = costs.environment_lines("gke", estimate)[0]
    assert f"about ${total:.3f}/hour" in headline
    assert f"~${total * 730:,.2f} a month" in headline
    pools = [line for line in costs.environment_lines("gke", estimate) if "pool " in line]
    assert len(pools) == 6 and all("per node (0 to 10 nodes)" in line for line in pools)


def test_an_unpriced_item_makes_the_idle_cost_a_lower_bound():
    resolved = resolve(
        EXAMPLES.parent, "gke", overrides=["project=my-project", "region=asia-east1"]
    )
    lines = costs.environment_lines("gke", costs.environment_costs(resolved.kind, resolved.config))
    assert lines[0].startswith("gke costs at least $0.00/hour while idle")
    assert "item(s) have no price" in lines[0]
    assert any("no price for e2-standard-2 in asia-east1" in line for line in lines)


def test_cfw_plan_and_up_show_the_idle_cost(tmp_path: Path, sandbox_base: Path):
    plan = run_cfw(["plan", "local"], cwd=tmp_path)
    assert plan.code == 0, plan.output
    assert "cfw: local costs nothing cfw can price while idle" in plan.stderr
    up = run_cfw(["up", "local", "--yes"], cwd=tmp_path)
    assert up.code == 0, up.output
    assert "local costs nothing cfw can price while idle" in up.stderr
    assert "nothing in a cloud: jobs run on this machine" in up.stderr
    assert run_cfw(["down", "local", "--yes"], cwd=tmp_path).code == 0


# -- the end of a run -------------------------------------------------------------------------
COST = {
    "estimate": True,
    "as_of": "2024-06-01",
    "total_usd": 12.5,
    "jobs_usd": 12.0,
    "fixed_usd": 0.5,
    "hours": 2.5,
    "job_hours": 40.0,
    "top_rules": [
        {"rule": "align", "usd": 9.0, "jobs": 12, "hours": 30.0},
        {"rule": "call", "usd": 3.0, "jobs": 1, "hours": 10.0},
    ],
    "spot": {
        "attempts": 4,
        "usd": 3.0,
        "on_demand_usd": 9.5,
        "saved_usd": 6.5,
        "preempted": 1,
        "preempted_usd": 0.25,
    },
    "unpriced": {"attempts": 2, "rules": ["plot"], "problems": ["no price for zz9 in x"]},
}


def test_a_run_ends_with_its_estimated_cost_top_rules_and_spot_savings():
    lines = costs.run_lines("r1", COST)
    assert lines[0] == (
        "run r1 cost an estimated $12.50: jobs $12.00 (40.0h of job time), fixed costs $0.50 "
        "over 2.5h (prices as of 2024-06-01; an estimate, not a bill)"
    )
    assert lines[1] == "most expensive rules (estimates): align $9.00 (12 jobs), call $3.00 (1 job)"
    assert lines[2] == (
        "spot saved an estimated $6.50 against on-demand prices (4 spot attempt(s) cost "
        "$3.00; 1 preempted, $0.25 of it lost)"
    )
    assert lines[3] == (
        "2 job attempt(s) of plot had no price and are not counted: no price for zz9 in x"
    )
    plain = {**COST, "spot": None, "unpriced": None}
    assert len(costs.run_lines("r1", plain)) == 2
    assert costs.run_lines("r1", None) == []


def test_the_budget_line_says_what_stopped_the_run_and_what_it_cost():
    cost = copy.deepcopy(COST)
    assert costs.budget_line("r1", cost) is None  # no budget
    cost["budget"] = {"usd": 10.0, "passed": True, "not_submitted": 3, "cancelled": 0}
    assert costs.budget_line("r1", cost) == (
        "the budget of $10.00 stopped run r1: its jobs cost an estimated $12.00 ($12.50 with "
        "fixed costs); 3 job(s) not submitted"
    )
    assert costs.budget_line("r1", cost, stopped=False).startswith(
        "run r1 passed its budget of $10.00 while its last jobs ran: its jobs cost an estimated"
    )


# -- status -----------------------------------------------------------------------------------
def test_the_cost_so_far_is_fixed_cost_times_age_plus_the_runs_since_it_came_up():
    resolved = example("gke")
    estimate = costs.environment_costs(resolved.kind, resolved.config)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    now = created + timedelta(hours=10)

    def run(run_id: str, started: datetime, usd: float) -> RunInfo:
        return RunInfo(run_id, "gke", 1, started.isoformat(), cost={"jobs_usd": usd, "as_of": "x"})

    runs = [
        run("before", created - timedelta(days=1), 100.0),  # an earlier life of the environment
        run("r1", created + timedelta(hours=1), 2.5),
        run("r2", created + timedelta(hours=5), 1.5),
    ]
    so_far = costs.cost_so_far(estimate, created, now, runs, up=True)
    assert so_far["fixed_usd"] == pytest.approx(estimate.idle_usd_per_hour * 10)
    assert so_far["runs_usd"] == pytest.approx(4.0)
    assert so_far["total_usd"] == pytest.approx(so_far["fixed_usd"] + 4.0)
    assert [r["run_id"] for r in so_far["runs"]] == ["r1", "r2"]
    assert so_far["estimate"] is True
    down = costs.cost_so_far(estimate, created, now, runs, up=False)
    assert down["fixed_usd"] == 0.0 and down["total_usd"] == pytest.approx(4.0)


def test_every_kind_has_fixed_costs_listed():
    for kind in kind_names():
        assert isinstance(get_kind(kind).fixed_costs(example(kind).config), list)


def test_a_run_where_nothing_is_priced_says_it_cost_nothing_in_a_cloud():
    local = {"as_of": None, "attempts": 0, "fixed_usd_per_hour": 0.0, "total_usd": 0.0}
    assert costs.run_lines("r1", local) == [
        "run r1 cost nothing in a cloud: its jobs ran where nothing is priced"
    ]
    # jobs that had a price to find and found none did cost something: not "nothing"
    unknown = {**COST, "as_of": None, "attempts": 0, "jobs_usd": 0.0, "spot": None}
    assert "had no price and are not counted" in costs.run_lines("r1", unknown)[-1]

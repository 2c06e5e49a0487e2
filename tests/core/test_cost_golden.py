"""Golden cost estimates: one synthetic run per kind, on the kind's example environment, its
jobs priced by the kind (each kind's sharing model), its records written as the executor
writes them, and the estimate read back from those records; the result is compared with
tests/golden/cost/KIND.json. After an intended change, refresh with CFW_UPDATE_GOLDEN=1
and review the diff.

The golden files pin the numbers; the assertions beside them pin what the numbers mean
(a VM of its own costs the whole machine, a shared node a share of it; the estimate is the
sum of wall time x price, plus the fixed cost over the run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cfw.backends.registry import get_kind
from cfw.core.assets import example_environments_dir
from cfw.executor.cost import attempts_from_records, fixed_usd_per_hour, summarize
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401
from support.render import GOLDEN, UPDATE

pytestmark = pytest.mark.usefixtures("shipped_tables")
CLOUD_KINDS = ["gke", "tibanna", "tes", "azure-batch", "google-batch"]
PINNED = {"gke": {"project": "my-project"}, "google-batch": {"project": "example-project"}}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
H = 3600.0
SHARED_NODES = {"gke", "azure-batch"}  # jobs share a node; elsewhere a job gets its own VM

BIG = {"threads": 4, "mem_mb": 8000}
MID = {"threads": 2, "mem_mb": 4000}
SPOT = {**MID, "preemptible": True}
ONE = {"threads": 1}
PREEMPTED = "preempted: its machine was reclaimed"
# (rule, jobid, resources, submitted h, started h or None, finished h, event, reason)
RUN = [
    ("align", 1, BIG, 0.0, 0.05, 2.05, "succeeded", None),
    ("align", 2, BIG, 0.0, 0.05, 2.05, "succeeded", None),
    ("align", 3, BIG, 0.0, 0.10, 2.60, "succeeded", None),
    ("call", 4, SPOT, 2.1, 2.2, 3.7, "succeeded", None),
    ("call", 5, SPOT, 2.1, 2.2, 2.7, "failed", PREEMPTED),
    ("call", 5, MID, 2.75, 2.8, 4.3, "succeeded", None),  # on demand (issue 12's fallback)
    ("plot", 6, ONE, 4.3, None, 4.55, "succeeded", None),  # ran between two polls
    ("qc", 7, ONE, 4.3, 4.35, 4.5, "failed", "exit code 1"),
    ("qc", 8, ONE, 4.3, None, 4.4, "cancelled", None),  # never ran
]
ENDED = 4.6


def example_context(kind: str):
    config = yaml.safe_load((example_environments_dir() / f"{kind}.yaml").read_text())
    config.pop("kind", None)
    return context(kind, {**config, **PINNED.get(kind, {})})


def synthetic_records(kind: str) -> tuple[list[dict], dict[str, dict]]:
    """The run's jobs.jsonl events, as the tracker writes them, and each attempt's price."""
    the_kind, ctx = get_kind(kind), example_context(kind)
    records, prices = [], {}
    attempts: dict[int, int] = {}
    for rule, jobid, resources, submitted, started, finished, event, reason in RUN:
        attempts[jobid] = attempts.get(jobid, 0) + 1
        spec = job_spec(rule, jobid, attempt=attempts[jobid], **resources)
        ext = f"{rule}-{jobid}-a{attempts[jobid]}"
        the_kind.translate(spec, ctx)  # a job the environment takes
        price = the_kind.price(spec, ctx).as_record()
        prices[ext] = price
        records.append(
            {
                "event": "submitted",
                "jobid": jobid,
                "rule": rule,
                "external_id": ext,
                "attempt": attempts[jobid],
                "t": T0 + submitted * H,
                "price": price,
            }
        )
        if started is not None:
            records.append({"event": "started", "external_id": ext, "t": T0 + started * H})
        end = {"event": event, "external_id": ext, "jobid": jobid, "t": T0 + finished * H}
        records.append({**end, **({"reason": reason} if reason else {})})
    return sorted(records, key=lambda r: r["t"]), prices


@pytest.mark.parametrize("kind", CLOUD_KINDS)
def test_golden_cost_estimate_of_a_synthetic_run(kind: str):
    records, prices = synthetic_records(kind)
    the_kind, ctx = get_kind(kind), example_context(kind)
    fixed = fixed_usd_per_hour(the_kind, ctx.config)
    summary = summarize(
        attempts_from_records(json.loads(json.dumps(records))),
        fixed_usd_per_hour=fixed,
        started=T0,
        now=T0 + ENDED * H,
    )
    result = {"prices": prices, "summary": summary}

    # what the numbers mean
    rates = {ext: p["usd_per_hour"] for ext, p in prices.items()}
    assert all(rate is not None for rate in rates.values()), prices
    expected_jobs = sum(rates[f"{rule}-{jobid}-a{n}"] * wall for rule, jobid, n, wall in walls())
    assert summary["jobs_usd"] == pytest.approx(expected_jobs, abs=1e-5)
    assert summary["fixed_usd"] == pytest.approx(fixed * ENDED, abs=1e-5)
    shares = {p["usd_per_hour"] / p["node_usd_per_hour"] for p in prices.values()}
    if kind in SHARED_NODES:
        assert min(shares) < 1  # a small job pays a share of a node
    else:
        assert shares == {1.0}  # a VM of its own
    assert summary["top_rules"][0]["rule"] == "align"
    assert summary["unpriced"] is None

    path = GOLDEN / "cost" / f"{kind}.json"
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden estimate {path}: run with CFW_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == json.loads(text), (
        f"the estimate differs from {path}; refresh with CFW_UPDATE_GOLDEN=1 if intended"
    )


def walls() -> list[tuple[str, int, int, float]]:
    """(rule, jobid, attempt, hours billed) of every attempt of RUN, by the rules of
    executor/cost.py: from first seen running (or, succeeded unseen, from submission)."""
    out, attempts = [], {}
    for rule, jobid, _, submitted, started, finished, event, _ in RUN:
        attempts[jobid] = attempts.get(jobid, 0) + 1
        if started is None:
            wall = finished - submitted if event == "succeeded" else 0.0
        else:
            wall = finished - started
        out.append((rule, jobid, attempts[jobid], wall))
    return out


def test_the_golden_run_has_a_preempted_spot_attempt_on_every_kind_with_spot():
    for kind in CLOUD_KINDS:
        path: Path = GOLDEN / "cost" / f"{kind}.json"
        summary = json.loads(path.read_text())["summary"]
        spot = summary["spot"]
        if spot is None:  # the example environment runs preemptible jobs on demand
            assert kind in {"tes", "azure-batch"}, kind
            continue
        assert spot["preempted"] == 1 and spot["attempts"] == 2
        assert spot["saved_usd"] < spot["on_demand_usd"]

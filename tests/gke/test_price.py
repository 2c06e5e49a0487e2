"""What a GKE job pays: its requests' share of what a node of its pool gives pods, at the
pool's capacity (spot or on demand), the cheapest pool that can hold it; GPUs included."""

from __future__ import annotations

import pytest

from cfw.backends.gke.translate import translate
from cfw.backends.registry import get_kind
from cfw.core import prices
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("gke")
# us-central1 list prices (data/gcp.json, 2024-06-01)
E2_STANDARD_4 = 4 * 0.021811 + 16 * 0.002923
E2_STANDARD_4_SPOT = 4 * 0.0065 + 16 * 0.00088
N1_STANDARD_8_2T4 = 8 * 0.031611 + 30 * 0.004237 + 2 * 0.35
# what an e2-standard-4 node gives pods (GKE's reservations, allocatable.py)
CPU_MILLI = 4000 - (60 + 10 + 2 * 5)
MEMORY_MIB = 16384 - round((4 * 0.25 + 4 * 0.20 + 8 * 0.10) * 1024) - 100  # and eviction


def ctx(**config):
    base = {
        "project": "my-project",
        "region": "us-central1",
        "machine_types": ["e2-standard-4"],
        "gpu_pools": [
            {"accelerator": "nvidia-tesla-t4", "count": 2, "machine_type": "n1-standard-8"}
        ],
    }
    return context("gke", {**base, **config})


def test_a_job_pays_its_largest_requests_share_of_a_node():
    c = ctx()
    cpu_bound = KIND.price(job_spec(threads=2, mem_mb=4000), c)
    assert cpu_bound.as_dict() == {
        "usd_per_hour": pytest.approx(2000 / CPU_MILLI * E2_STANDARD_4, abs=1e-6),
        "node_usd_per_hour": pytest.approx(E2_STANDARD_4),
        "machine": "e2-standard-4",
        "capacity": "on-demand",
        "as_of": "2024-06-01",
    }
    memory_bound = KIND.price(job_spec(threads=1, mem_mb=12000), c)
    assert memory_bound.share == pytest.approx(12000 / MEMORY_MIB)
    whole = KIND.price(job_spec(threads=3, mem_mb=13000), c)
    assert whole.share == pytest.approx(13000 / MEMORY_MIB) and whole.share < 1


def test_a_preemptible_job_pays_the_spot_pools_price_and_knows_the_on_demand_one():
    job = KIND.price(job_spec(threads=2, preemptible=True), ctx())
    assert job.capacity == "spot"
    assert job.node.usd_per_hour == pytest.approx(E2_STANDARD_4_SPOT)
    assert job.usd_per_hour == pytest.approx(2000 / CPU_MILLI * E2_STANDARD_4_SPOT, abs=1e-6)
    assert job.on_demand_usd_per_hour == pytest.approx(2000 / CPU_MILLI * E2_STANDARD_4)
    # without spot pools a preemptible job runs (and is priced) on demand
    assert KIND.price(job_spec(preemptible=True), ctx(spot=False)).capacity == "on-demand"


def test_a_gpu_job_pays_its_share_of_the_node_with_its_gpus():
    job = KIND.price(job_spec(threads=2, gpu=1), ctx())
    assert job.machine == "n1-standard-8 + 2 x nvidia-tesla-t4"
    assert job.node.usd_per_hour == pytest.approx(N1_STANDARD_8_2T4)
    assert job.share == pytest.approx(0.5)  # one of the node's two GPUs
    assert KIND.price(job_spec(threads=2, gpu=2), ctx()).share == 1.0


def test_among_pools_that_can_hold_the_job_the_estimate_takes_the_cheapest():
    spec = job_spec(threads=1, mem_mb=1000)
    alone = {
        machine: KIND.price(spec, ctx(machine_types=[machine], gpu_pools=[])).usd_per_hour
        for machine in ("e2-standard-4", "e2-standard-16", "n2-standard-8")
    }
    both = KIND.price(spec, ctx(machine_types=list(alone), gpu_pools=[]))
    assert both.usd_per_hour == pytest.approx(min(alone.values()))
    assert len(set(alone.values())) == 3


def test_a_region_the_table_lacks_is_a_clear_no_price_and_the_job_still_translates():
    c = ctx(region="asia-east1")
    spec = job_spec(threads=2)
    job = KIND.price(spec, c)
    assert job.usd_per_hour is None
    assert job.problem.startswith("no price for e2-standard-4 in asia-east1")
    assert job.as_dict()["problem"] == job.problem
    assert translate(spec, c)["job"]["kind"] == "Job"


def test_each_pool_shows_its_node_price():
    pools = {p.pool: p for p in KIND.pool_prices(ctx().config)}
    assert set(pools) == {"od-e2-standard-4", "spot-e2-standard-4", "gpu-t4-n1-standard-8"}
    assert pools["od-e2-standard-4"].price.usd_per_hour == pytest.approx(E2_STANDARD_4)
    assert pools["spot-e2-standard-4"].price.capacity == "spot"
    assert pools["spot-e2-standard-4"].price.usd_per_hour == pytest.approx(E2_STANDARD_4_SPOT)
    assert pools["gpu-t4-n1-standard-8"].price.usd_per_hour == pytest.approx(N1_STANDARD_8_2T4)
    assert pools["od-e2-standard-4"].nodes == "0 to 10 nodes"
    # the idle costs: the cluster fee and the system node, in the environment's region
    idle = prices.idle_usd_per_hour(KIND.fixed_costs(ctx().config))
    expected = 0.10 + (2 * 0.021811 + 8 * 0.002923) + 50 * 0.1 / 730 + 0.0014 + 0.005
    assert idle == pytest.approx(expected, abs=1e-5)  # the items are rounded to 6 places

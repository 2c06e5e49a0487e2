"""What an Azure Batch task pays: its slots' share of a node of the pool it goes to, at the
capacity the pool's autoscale formula fills first (low-priority or dedicated)."""

from __future__ import annotations

import pytest

from cfw.backends.registry import get_kind
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("azure-batch")
D4S_V3 = 0.192  # eastus, on demand (data/azure.json, 2024-06-01)
D4S_V3_SPOT = 0.038
E16S_V3 = 1.008


def ctx(*pools, region="eastus"):
    return context("azure-batch", {"region": region, "pools": list(pools)})


def test_a_task_pays_its_slots_share_of_the_node():
    c = ctx({"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4})
    one = KIND.price(job_spec(threads=1), c)
    assert one.as_dict() == {
        "usd_per_hour": pytest.approx(D4S_V3 / 4),
        "node_usd_per_hour": D4S_V3,
        "machine": "Standard_D4s_v3",
        "capacity": "on-demand",
        "as_of": "2024-06-01",
    }
    assert KIND.price(job_spec(threads=3), c).usd_per_hour == pytest.approx(D4S_V3 * 3 / 4)
    assert KIND.price(job_spec(threads=4), c).usd_per_hour == pytest.approx(D4S_V3)


def test_one_task_per_node_pays_the_whole_node():
    c = ctx({"vm_size": "Standard_D4s_v3"})
    assert KIND.price(job_spec(threads=1), c).usd_per_hour == pytest.approx(D4S_V3)


@pytest.mark.parametrize(
    ("pool", "capacity"),
    [
        ({"max_low_priority_nodes": 4}, "on-demand"),  # dedicated nodes come first
        ({"max_low_priority_nodes": 4, "prefer_low_priority": True}, "spot"),
        ({"max_low_priority_nodes": 4, "max_dedicated_nodes": 0}, "spot"),
    ],
)
def test_the_capacity_is_the_one_the_autoscale_formula_fills_first(pool, capacity):
    c = ctx({"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4, **pool})
    job = KIND.price(job_spec(threads=2, preemptible=True), c)
    assert job.capacity == capacity
    node = D4S_V3_SPOT if capacity == "spot" else D4S_V3
    assert job.usd_per_hour == pytest.approx(node / 2)
    assert job.on_demand_usd_per_hour == pytest.approx(D4S_V3 / 2)


def test_the_task_is_priced_on_the_pool_it_goes_to():
    c = ctx(
        {"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4},
        {"vm_size": "Standard_E16s_v3", "task_slots_per_node": 16},
    )
    big = KIND.price(job_spec(threads=8), c)
    assert (big.machine, big.usd_per_hour) == ("Standard_E16s_v3", pytest.approx(E16S_V3 / 2))


def test_pools_show_their_dedicated_and_low_priority_node_prices():
    config = ctx({"vm_size": "Standard_D4s_v3", "max_low_priority_nodes": 2}).config
    lines = [
        (p.pool, p.price.capacity, p.price.usd_per_hour, p.nodes) for p in KIND.pool_prices(config)
    ]
    assert lines == [
        ("standard-d4s-v3", "on-demand", D4S_V3, "0 to 4 dedicated nodes"),
        ("standard-d4s-v3", "spot", D4S_V3_SPOT, "0 to 2 low-priority nodes"),
    ]


def test_a_region_the_table_lacks_is_a_clear_no_price():
    job = KIND.price(job_spec(), ctx({"vm_size": "Standard_D4s_v3"}, region="uksouth"))
    assert job.problem.startswith("no price for Standard_D4s_v3 in uksouth")

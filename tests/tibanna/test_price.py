"""What a Tibanna job pays: the whole instance Tibanna starts for it — the rule's machine
type as translate resolves it, else the one Tibanna's own Benchmark choice launches first."""

from __future__ import annotations

import pytest
from Benchmark.classes import get_instance_types, instance_list

from cfw.backends.registry import get_kind
from cfw.backends.tibanna.translate import translate
from cfw.core import prices
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("tibanna")


def ctx(region: str = "us-east-1"):
    return context("tibanna", {"region": region})


def test_a_family_prefix_is_priced_as_the_instance_translate_resolves():
    spec = job_spec(threads=2, mem_mb=3000, machine_type="c5")
    job = KIND.price(spec, ctx())
    assert job.machine == translate(spec, ctx())["config"]["instance_type"] == "c5.large"
    assert job.share == 1.0  # a VM of its own
    assert job.usd_per_hour == prices.machine_price("aws", "us-east-1", "c5.large").usd_per_hour


@pytest.mark.parametrize(("threads", "mem_mb"), [(1, None), (2, 4000), (8, 30000), (16, 60000)])
def test_without_a_machine_type_it_is_the_instance_tibanna_launches_first(threads, mem_mb):
    c = ctx()
    spec = job_spec(threads=threads, **({"mem_mb": mem_mb} if mem_mb else {}))
    run_config = translate(spec, c)["config"]
    # Tibanna's run_task: Benchmark's cheapest type with cpu and mem + 1 GB
    first = get_instance_types(
        run_config["cpu"], run_config["mem"] + 1, instance_list(exclude_t=False)
    )[0]["instance_type"]
    job = KIND.price(spec, c)
    assert job.machine == first
    assert job.usd_per_hour == prices.machine_price("aws", "us-east-1", first).usd_per_hour


def test_a_preemptible_job_is_priced_on_spot_with_its_on_demand_price():
    job = KIND.price(job_spec(threads=2, mem_mb=3000, machine_type="m5", preemptible=True), ctx())
    assert (job.machine, job.capacity) == ("m5.large", "spot")
    spot = prices.machine_price("aws", "us-east-1", "m5.large", spot=True)
    assert job.usd_per_hour == spot.usd_per_hour
    assert job.on_demand_usd_per_hour == 0.096


def test_a_region_the_table_lacks_is_a_clear_no_price():
    job = KIND.price(job_spec(threads=2, machine_type="c5"), ctx("eu-west-2"))
    assert job.usd_per_hour is None
    assert job.problem.startswith("no price for c5.large in eu-west-2 (prices as of 2024-06-01)")

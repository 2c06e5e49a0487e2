"""A job on a cluster cfw did not create has no price: its line names the node type its
pool selects and says why, and the capacity is the pool's."""

from __future__ import annotations

import pytest
import yaml

from cfw.backends.registry import get_kind
from cfw.core.assets import example_environments_dir
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("kubernetes")


def example():
    config = yaml.safe_load((example_environments_dir() / "kubernetes.yaml").read_text())
    config.pop("kind")
    return context("kubernetes", config)


@pytest.mark.parametrize(
    ("resources", "machine", "capacity"),
    [
        ({"threads": 2}, "m5.2xlarge", "on-demand"),
        ({"threads": 2, "preemptible": True}, "m5.2xlarge", "spot"),
        ({"gpu": 1}, "gpu", "on-demand"),  # a pool selected by GPU product, not by type
    ],
)
def test_a_job_on_an_existing_cluster_has_no_price_and_says_why(resources, machine, capacity):
    job = KIND.price(job_spec(**resources), example())
    assert job.usd_per_hour is None and (job.machine, job.capacity) == (machine, capacity)
    assert job.problem == (
        f"no price for {machine} in a cluster cfw did not create: its cloud, region and "
        "prices are its owner's"
    )
    assert KIND.fixed_costs(example().config)[0].usd_per_hour == 0.0

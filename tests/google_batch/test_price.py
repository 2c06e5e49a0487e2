"""What a Google Batch job pays: the whole VM Batch creates for it — the machine type its
request names, with attached GPUs; a preemptible job on a Spot VM."""

from __future__ import annotations

import pytest

from cfw.backends.google_batch.translate import translate
from cfw.backends.registry import get_kind
from cfw.core import prices
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("google-batch")


def ctx(**config):
    return context("google-batch", {"project": "my-project", "region": "us-central1", **config})


def instance(payload: dict) -> dict:
    return payload["job"]["allocationPolicy"]["instances"][0]["policy"]


@pytest.mark.parametrize(
    "resources",
    [
        {"threads": 1},
        {"threads": 2, "mem_mb": 4000},
        {"threads": 4, "mem_mb": 30000},
        {"threads": 8, "machine_type": "n2"},
        {"threads": 2, "machine_type": "c2d-standard-8"},
    ],
)
def test_a_job_pays_the_whole_vm_its_request_names(resources):
    spec = job_spec(**resources)
    vm = instance(translate(spec, ctx()))
    job = KIND.price(spec, ctx())
    assert job.machine == vm["machineType"] and job.share == 1.0
    price = prices.machine_price("gcp", "us-central1", vm["machineType"])
    assert job.usd_per_hour == price.usd_per_hour and job.capacity == "on-demand"


def test_attached_gpus_are_part_of_the_vms_price():
    spec = job_spec(threads=4, gpu=1, gpu_model="t4")
    vm = instance(translate(spec, ctx()))
    job = KIND.price(spec, ctx())
    node = prices.node_price(
        "gcp", "us-central1", vm["machineType"], gpu_model="nvidia-tesla-t4", gpus=1
    )
    assert job.usd_per_hour == pytest.approx(node.usd_per_hour)
    assert job.machine == f"{vm['machineType']} + 1 x nvidia-tesla-t4"


def test_a_preemptible_job_is_priced_on_a_spot_vm():
    spec = job_spec(threads=2, mem_mb=4000, preemptible=True)
    vm = instance(translate(spec, ctx()))
    assert vm["provisioningModel"] == "SPOT"
    job = KIND.price(spec, ctx())
    spot = prices.machine_price("gcp", "us-central1", vm["machineType"], spot=True)
    on_demand = prices.machine_price("gcp", "us-central1", vm["machineType"])
    assert (job.usd_per_hour, job.on_demand_usd_per_hour) == (
        spot.usd_per_hour,
        on_demand.usd_per_hour,
    )


def test_a_machine_without_a_spot_price_says_so():
    job = KIND.price(job_spec(threads=4, machine_type="c2d", preemptible=True), ctx())
    assert job.usd_per_hour is None
    assert job.problem.startswith("no price for c2d-standard-4 (spot) in us-central1")

"""What a TES task pays on the Funnel cfw provisions: the cheapest instance its AWS Batch
compute environment may start that fits the task, whole; nothing known for a TES URL."""

from __future__ import annotations

import pytest

from cfw.backends.registry import get_kind
from cfw.backends.tes.price import shape
from support.builders import context, job_spec
from support.prices import shipped_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("shipped_tables")
KIND = get_kind("tes")


def ctx(region="us-east-1", **batch):
    return context("tes", {"region": region, "allowed_cidrs": ["203.0.113.7/32"], "batch": batch})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("c4.large", (2, 3.75)),
        ("c4.8xlarge", (36, 60.0)),
        ("m5.large", (2, 8.0)),
        ("r6i.xlarge", (4, 32.0)),
        ("c7a.medium", (1, 2.0)),
        ("m6i.12xlarge", (48, 192.0)),
        ("r4.16xlarge", (64, 488.0)),
        ("t3.small", None),
        ("g4dn.xlarge", None),
    ],
)
def test_instance_shapes_from_their_names(name, expected):
    assert shape(name) == expected


@pytest.mark.parametrize(
    ("resources", "batch", "machine", "usd"),
    [
        # optimal: the C4, M4 and R4 families (AWS Batch's meaning)
        ({"threads": 1}, {}, "c4.large", 0.1),  # 512 MiB; c4.large and m4.large tie
        ({"threads": 2, "mem_mb": 4000}, {}, "m4.large", 0.1),  # c4.large has 3.75 GiB
        ({"threads": 2, "mem_mb": 12000}, {}, "r4.large", 0.133),
        ({"threads": 8, "mem_mb": 16000}, {"instance_types": ["m5"]}, "m5.2xlarge", 0.384),
        ({"threads": 2}, {"instance_types": ["c5.xlarge", "m5"]}, "m5.large", 0.096),
    ],
)
def test_a_task_pays_the_cheapest_instance_that_fits_whole(resources, batch, machine, usd):
    job = KIND.price(job_spec(**resources), ctx(**batch))
    assert (job.machine, job.share, job.capacity) == (machine, 1.0, "on-demand")
    assert job.usd_per_hour == pytest.approx(usd)


def test_a_spot_compute_environment_prices_every_task_on_spot():
    job = KIND.price(job_spec(threads=2, mem_mb=4000), ctx(spot=True))
    assert (job.machine, job.capacity) == ("m4.large", "spot")
    assert job.usd_per_hour < job.on_demand_usd_per_hour == pytest.approx(0.1)


def test_no_fitting_instance_and_an_unknown_region_say_so():
    job = KIND.price(job_spec(threads=128), ctx())
    assert job.usd_per_hour is None and "no price for an instance of optimal" in job.problem
    far = KIND.price(job_spec(), ctx(region="ap-south-1"))
    assert far.problem.startswith("no price for an AWS Batch instance in ap-south-1")


def test_a_tes_server_cfw_did_not_provision_has_no_price():
    c = context("tes", {"url": "https://tes.example.org", "storage": {"prefix": "s3://b/x"}})
    job = KIND.price(job_spec(), c)
    assert job.usd_per_hour is None
    assert job.problem.startswith("no price for the machines of https://tes.example.org")

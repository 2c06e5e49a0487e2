"""Kind `gke`: a Job whose Spot node went away (the pod's DisruptionTarget: node shutdown,
node deleted) is resubmitted by cfw, on Spot pools and then once on an on-demand pool's
nodeSelector; a pod's own failure is not retried. Against tests/support/fake_kube.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cfw.backends._kube import client as kube_client
from cfw.backends.base import JobState
from cfw.backends.gke.backend import GkeBackend
from cfw.backends.gke.config import GkeConfig, node_pools
from cfw.backends.gke.kind import KIND
from cfw.backends.gke.translate import SPOT_LABEL
from cfw.executor.retry import SpotPolicy
from support.builders import context, job_spec
from support.fake_kube import FakeKube
from support.spot import SpotDriver

NS, RUN = "cfw-jobs", "03021200beef"
POD_STATUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "gke" / "pods.yaml").read_text())


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


@pytest.fixture
def driver(fake, tmp_path):
    def make(retries: int = 3, fallback: str = "on-demand", **config) -> SpotDriver:
        cfg = GkeConfig(project="my-project", name="gke", **config)
        outputs = {
            "namespace": NS,
            "service_account": "cfw-jobs",
            "project": "my-project",
            "node_pools": {p.name: p.machine_type for p in node_pools(cfg)},
        }
        ctx = context("gke", cfg, outputs=outputs, state_dir=tmp_path, run_id=RUN)
        backend = GkeBackend(ctx, kube=kube_client.connect(fake.url, None, lambda: fake.token))
        return SpotDriver(KIND, ctx, backend, SpotPolicy(retries, fallback), tmp_path / "run")

    return make


def cluster(fake: FakeKube, losses: list[str], final: str | None = None):
    """The n-th submission's node is lost as ``losses[n]`` (a pods.yaml shape); a later
    one succeeds (or fails as the ``final`` shape)."""

    def service(job: str, spec, index: int) -> None:
        fake.start(job, NS)
        if index < len(losses):
            fake.fail(job, NS, POD_STATUS[losses[index]], reason="PodFailurePolicy")
        elif final:
            fake.fail(job, NS, POD_STATUS[final])
        else:
            fake.finish(job, NS)

    return service


def pools(fake: FakeKube, job: str) -> dict:
    return fake.get("jobs", NS, job)["spec"]["template"]["spec"].get("nodeSelector") or {}


def test_a_lost_spot_node_means_spot_again_then_an_on_demand_pool(fake, driver):
    spot = driver(retries=1)
    out = spot.run(
        job_spec("align", 12, run_id=RUN, preemptible=True),
        cluster(fake, ["spot_preempted", "node_gone"]),
    )
    assert out.state == JobState.SUCCEEDED
    selectors = [pools(fake, job) for job in out.external_ids]
    assert [s.get(SPOT_LABEL) for s in selectors] == ["true", "true", None]
    assert out.external_ids == [
        "cfw-03021200beef-12-align-a1",
        "cfw-03021200beef-12-align-a1p1",
        "cfw-03021200beef-12-align-a1p2",
    ]
    assert out.messages == [
        "job 12 (align) preempted once; again on spot (0 spot retries left)",
        "job 12 (align) preempted twice; now on demand",
    ]
    submitted = [r for r in spot.records() if r["event"] == "submitted"]
    assert [r["capacity"] for r in submitted] == ["spot", "spot", "on-demand"]


def test_fallback_fail_names_the_preemptions(fake, driver):
    spot = driver(retries=0, fallback="fail")
    out = spot.run(job_spec("align", 5, run_id=RUN, preemptible=True), cluster(fake, ["node_gone"]))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert out.reason.startswith("job 5 (align) preempted once, 0 spot retries used up")
    assert "Spot VM preempted (its node disappeared)" in out.reason


def test_without_an_on_demand_pool_that_fits_the_job_fails(fake, driver):
    spot = driver(
        retries=0,
        machine_types=[],
        gpu_pools=[
            {
                "accelerator": "nvidia-tesla-t4",
                "count": 1,
                "machine_type": "n1-standard-8",
                "spot": True,
            }
        ],
    )
    spec = job_spec("align", 6, run_id=RUN, preemptible=True, gpu=1)
    assert spot.spot.policy.plan(spec, KIND, spot.ctx)["then"] == "fail"
    out = spot.run(spec, cluster(fake, ["spot_preempted"]))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "no on-demand fallback (" in out.reason and "only Spot pools" in out.reason


def test_a_pods_own_failure_is_not_retried(fake, driver):
    spot = driver()
    out = spot.run(
        job_spec("align", 7, run_id=RUN, preemptible=True), cluster(fake, [], final="oom_killed")
    )
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "OOMKilled" in out.reason


def test_an_on_demand_jobs_lost_node_is_a_failure(fake, driver):
    spot = driver()
    out = spot.run(job_spec("align", 8, run_id=RUN), cluster(fake, ["node_gone"]))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "its node disappeared" in out.reason


def test_unschedulable_timeout_is_the_old_name_of_pending_timeout():
    from datetime import timedelta

    old = GkeConfig(project="my-project", name="gke", unschedulable_timeout="10m")
    assert old.pending_timeout == timedelta(minutes=10)
    assert GkeConfig(project="my-project", name="gke").pending_timeout == timedelta(minutes=30)
    # the Kubernetes backend fails an Unschedulable pod itself (its scheduler's message)
    assert GkeBackend.watches_pending


def test_without_spot_pools_a_preemptible_job_has_no_spot_plan(driver):
    spot = driver(spot_pools=False)
    spec = job_spec("align", 9, run_id=RUN, preemptible=True)
    assert not KIND.on_spot(spec, spot.ctx)  # it runs on an on-demand pool
    assert spot.spot.policy.plan(spec, KIND, spot.ctx) is None
    assert driver().spot.policy.plan(spec, KIND, driver().ctx) == {
        "spot_attempts": 4,
        "spot_retries": 3,
        "then": "on-demand",
    }

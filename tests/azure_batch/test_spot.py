"""Kind `azure-batch`: Batch requeues a task whose low-priority node is preempted by itself
(requeueCount); cfw lets it, up to the run's spot retries, then stops the task and
resubmits the job once to a pool of dedicated nodes. Against tests/support/fake_batch.py
(the real azure-batch client over HTTPS)."""

from __future__ import annotations

import pytest

from cfw.backends.azure_batch.backend import AzureBatchBackend
from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.kind import KIND
from cfw.backends.base import JobState
from cfw.executor.retry import SpotPolicy
from support.builders import context, job_spec
from support.spot import SpotDriver

pytest_plugins = ["support.azure"]  # the fake_batch fixture

BATCH_KEY = "ZmFrZS1iYXRjaC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ=="
SPOT_POOL = {
    "id": "spot-d4",
    "vm_size": "Standard_D4s_v3",
    "task_slots_per_node": 4,
    "max_dedicated_nodes": 0,
    "max_low_priority_nodes": 4,
}
DEDICATED_POOL = {"id": "dedicated-d4", "vm_size": "Standard_D4s_v3", "task_slots_per_node": 4}


@pytest.fixture
def driver(fake_batch, tmp_path):
    fake_batch.pools.update({"spot-d4": 4, "dedicated-d4": 4})

    def make(retries=2, fallback="on-demand", pools=(SPOT_POOL, DEDICATED_POOL)) -> SpotDriver:
        cfg = AzureBatchConfig(name="ab", region="westeurope", pools=list(pools))
        outputs = KIND.output_placeholders(cfg, None)
        outputs.update(
            batch_account_url=fake_batch.base_url,
            storage_blob_endpoint="https://acct.blob.core.windows.net",
            storage_container_urls={
                c: f"https://acct.blob.core.windows.net/{c}" for c in ("data", "logs")
            },
            identity_id="/subscriptions/s/resourceGroups/g/providers/x/nodes",
            identity_client_id="11111111-2222-3333-4444-555555555555",
        )
        ctx = context(
            "azure-batch", cfg, name="ab", outputs=outputs, state_dir=tmp_path, run_id="run1"
        )
        backend = AzureBatchBackend(
            ctx, environ={"AZ_BATCH_ACCOUNT_KEY": BATCH_KEY, "AZ_BATCH_ACCOUNT_NAME": "acct"}
        )
        return SpotDriver(KIND, ctx, backend, SpotPolicy(retries, fallback), tmp_path / "run")

    return make


def batch(fake, preemptions: list[int], exit_code: int = 0):
    """The n-th submission's node is preempted ``preemptions[n]`` times (Batch requeues
    and restarts the task on another node each time); later ones finish with EXIT_CODE."""

    def service(ext: str, spec, index: int) -> None:
        job_id, _, task_id = ext.partition("/")
        if index < len(preemptions):
            for n in range(preemptions[index]):
                fake.start(job_id, task_id, node=f"tvm-lp-{n}")
                fake.preempt_node(f"tvm-lp-{n}")
            if fake.task(job_id, task_id).state == "active":
                fake.start(job_id, task_id, node="tvm-lp-last")
        else:
            fake.start(job_id, task_id, node="tvm-dedicated")
            fake.finish(job_id, task_id, exit_code=exit_code)

    return service


def test_batch_requeues_then_cfw_moves_the_job_to_dedicated_nodes(fake_batch, driver):
    spot = driver(retries=2)
    out = spot.run(job_spec("align", 12, run_id="run1", preemptible=True), batch(fake_batch, [3]))
    assert out.state == JobState.SUCCEEDED
    assert [e.split("/")[0] for e in out.external_ids] == [
        "cfw-run1-spot-d4",
        "cfw-run1-dedicated-d4",
    ]
    first = fake_batch.task(*out.external_ids[0].split("/"))
    assert first.state == "completed" and first.requeues == 3  # cfw stopped Batch's requeues
    assert out.messages == ["job 12 (align) preempted 3 times; now on demand"]
    preempted = [r for r in spot.records() if r["event"] == "preempted"]
    assert "low-priority node was preempted 3 times" in preempted[0]["reason"]


def test_requeues_within_the_spot_retries_are_left_to_batch(fake_batch, driver):
    spot = driver(retries=2)

    def service(ext, spec, index):
        job_id, _, task_id = ext.partition("/")
        for n in range(2):
            fake_batch.start(job_id, task_id, node=f"tvm-lp-{n}")
            fake_batch.preempt_node(f"tvm-lp-{n}")
        fake_batch.start(job_id, task_id, node="tvm-lp-2")
        fake_batch.finish(job_id, task_id)

    out = spot.run(job_spec("align", 3, run_id="run1", preemptible=True), service)
    assert out.state == JobState.SUCCEEDED and len(out.external_ids) == 1


def test_fallback_fail_names_the_preemptions(fake_batch, driver):
    spot = driver(retries=0, fallback="fail")
    out = spot.run(job_spec("align", 5, run_id="run1", preemptible=True), batch(fake_batch, [1]))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert out.reason.startswith("job 5 (align) preempted once, 0 spot retries used up")


def test_without_a_dedicated_pool_there_is_no_fallback(fake_batch, driver):
    mixed = {**DEDICATED_POOL, "max_low_priority_nodes": 2}
    spot = driver(retries=0, pools=(SPOT_POOL, mixed))
    spec = job_spec("align", 6, run_id="run1", preemptible=True)
    assert spot.spot.policy.plan(spec, KIND, spot.ctx)["then"] == "fail"
    out = spot.run(spec, batch(fake_batch, [1]))
    assert out.state == JobState.FAILED and "no pool of dedicated nodes only" in out.reason


def test_a_task_that_fails_by_itself_is_not_retried(fake_batch, driver):
    spot = driver()
    out = spot.run(job_spec("align", 7, run_id="run1", preemptible=True), batch(fake_batch, [], 3))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "FailureExitCode" in out.reason


def test_a_task_no_node_takes_fails_after_pending_timeout(fake_batch, driver):
    from support.spot import Clock, PendingDriver

    clock = Clock()
    spot = driver()
    watch = PendingDriver(spot.ctx, spot.backend, clock)
    spec = job_spec("align", 1, run_id="run1")
    ext = spot.backend.submit(spec, KIND.translate(spec, spot.ctx), {})
    assert watch.poll([ext])[ext].state == JobState.PENDING
    clock.minutes(30)
    status = watch.poll([ext])[ext]
    assert status.state == JobState.FAILED
    assert status.reason.endswith("the Batch task is active: no node of pool dedicated-d4 took it")
    job_id, _, task_id = ext.partition("/")
    assert fake_batch.task(job_id, task_id).state == "completed"  # terminated by cfw

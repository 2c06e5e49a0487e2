"""Kind `google-batch`: a Spot VM preempted (Batch exit code 50001) is retried by Batch
itself (maxRetryCount with a lifecycle policy, the run's spot retries), then resubmitted by
cfw on STANDARD capacity; the other VM-loss codes are resubmitted by cfw; a job's own
failure is not retried. Against the fake Batch API of tests/support/fake_google.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfw.backends.base import JobState
from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.registry import get_kind
from cfw.executor.retry import SpotPolicy
from support.builders import context, job_spec
from support.fake_google import PROJECT, FakeGoogle
from support.spot import SpotDriver

KIND = get_kind("google-batch")


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


@pytest.fixture
def driver(fake, tmp_path: Path):
    made = []

    def make(retries: int = 3, fallback: str = "on-demand") -> SpotDriver:
        ctx = context(
            "google-batch", {"project": PROJECT}, state_dir=tmp_path / ".cfw", run_id="r1"
        )
        backend = GoogleBatchBackend(ctx, clients=fake.clients())
        made.append(backend)
        return SpotDriver(KIND, ctx, backend, SpotPolicy(retries, fallback), tmp_path / "run")

    yield make
    for backend in made:
        backend.clients.close()


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def batch(
    fake: FakeGoogle, preemptions: list[int], final: tuple[str, int | None] = ("SUCCEEDED", 0)
):
    """The n-th submission's VM is lost ``preemptions[n]`` times (exit 50001); a
    submission past the list ends as ``final``."""

    def service(name: str, spec, index: int) -> None:
        job_id = short(name)
        fake.batch.advance(job_id, "RUNNING")
        if index < len(preemptions):
            for _ in range(preemptions[index]):
                fake.batch.preempt(job_id)
        else:
            fake.batch.advance(job_id, final[0], exit_code=final[1])

    return service


def sent(fake: FakeGoogle) -> list[tuple[str, int]]:
    """(provisioning model, maxRetryCount) of each job Batch received."""
    return [
        (
            r.job.allocation_policy.instances[0].policy.provisioning_model.name,
            r.job.task_groups[0].task_spec.max_retry_count,
        )
        for r in fake.batch.requests
    ]


def test_batch_retries_spot_itself_then_cfw_resubmits_on_standard(fake, driver):
    spot = driver(retries=2)
    # Batch runs the task three times on Spot (2 retries), all preempted
    out = spot.run(job_spec("align", 12, preemptible=True), batch(fake, [3]))
    assert out.state == JobState.SUCCEEDED
    assert sent(fake) == [("SPOT", 2), ("STANDARD", 0)]
    assert out.messages == ["job 12 (align) preempted 3 times; now on demand"]
    submitted = [r for r in spot.records() if r["event"] == "submitted"]
    assert [r["capacity"] for r in submitted] == ["spot", "on-demand"]
    assert short(out.external_ids[1]).endswith("-a1p1")  # a job of its own
    preempted = [r for r in spot.records() if r["event"] == "preempted"]
    assert "Batch exit code 50001" in preempted[0]["reason"] and preempted[0]["then"] == "on-demand"


def test_another_vm_loss_is_resubmitted_on_spot_with_the_retries_left(fake, driver):
    spot = driver(retries=2)

    def service(name: str, spec, index: int) -> None:
        job_id = short(name)
        if index == 0:  # the VM stopped reporting: Batch does not retry this code
            fake.batch.preempt(job_id, exit_code=50002)
        else:
            fake.batch.advance(job_id, "SUCCEEDED", exit_code=0)

    out = spot.run(job_spec("align", 4, preemptible=True), service)
    assert out.state == JobState.SUCCEEDED
    assert sent(fake) == [("SPOT", 2), ("SPOT", 1)]
    assert "again on spot (1 spot retries left)" in out.messages[0]


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_preemptible_retries_are_batchs_max_retry_count(fake, driver, retries):
    spot = driver(retries=retries)
    out = spot.run(job_spec("align", 3, preemptible=True), batch(fake, [retries + 1]))
    assert out.state == JobState.SUCCEEDED
    assert sent(fake) == [("SPOT", retries), ("STANDARD", 0)]


def test_fallback_fail_names_the_preemptions(fake, driver):
    spot = driver(retries=1, fallback="fail")
    out = spot.run(job_spec("align", 5, preemptible=True), batch(fake, [2]))
    assert out.state == JobState.FAILED and len(fake.batch.requests) == 1
    assert out.reason.startswith("job 5 (align) preempted twice, 1 spot retries used up")
    assert "the spot VM was preempted (Batch exit code 50001)" in out.reason


def test_a_job_that_fails_by_itself_is_not_retried(fake, driver):
    spot = driver()
    out = spot.run(job_spec("align", 6, preemptible=True), batch(fake, [], ("FAILED", 1)))
    assert out.state == JobState.FAILED and len(fake.batch.requests) == 1
    assert out.reason == "exit code 1"


def test_a_job_queued_for_pending_timeout_fails_with_batchs_state(fake, tmp_path):
    from support.spot import Clock, PendingDriver

    ctx = context(
        "google-batch",
        {"project": PROJECT, "pending_timeout": "45m"},
        state_dir=tmp_path / ".cfw",
        run_id="r1",
    )
    clock = Clock()
    backend = GoogleBatchBackend(ctx, clients=fake.clients())
    watch = PendingDriver(ctx, backend, clock)
    spec = job_spec("align", 1)
    name = backend.submit(spec, KIND.translate(spec, ctx), {})
    fake.batch.advance(short(name), "SCHEDULED", description="no VM of e2-standard-4 is free")
    assert watch.poll([name])[name].state == JobState.PENDING
    clock.minutes(44)
    assert watch.poll([name])[name].state == JobState.PENDING
    clock.minutes(1)
    status = watch.poll([name])[name]
    assert status.state == JobState.FAILED
    assert status.reason.startswith("waited 45m for capacity with none of the run's jobs")
    assert status.reason.endswith("the Batch job is SCHEDULED: no VM of e2-standard-4 is free")
    assert fake.rpcs["DeleteJob"] == 1  # cancelled
    backend.clients.close()

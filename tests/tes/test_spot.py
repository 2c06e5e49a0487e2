"""Kind `tes`: a task the server reports PREEMPTED is resubmitted by cfw (spot, then once
with ``preemptible: false``), against the TES server of tests/support/tes_server.py; a
failure that is not a preemption is not retried."""

from __future__ import annotations

import pytest

from cfw.backends.base import JobState
from cfw.backends.tes.backend import TesBackend
from cfw.backends.tes.kind import KIND
from cfw.executor.retry import SpotPolicy, times
from support.builders import context, job_spec
from support.spot import SpotDriver
from support.tes_server import TesServer

USER, PASSWORD = "alice", "pw-Lk3vQ9zT7"


def make_ctx(url: str, tmp_path):
    """A run on environment `tes`, an existing server at ``url``."""
    return context(
        "tes",
        {"url": url, "storage": {"prefix": "s3://bucket/cfw"}},
        outputs={"tes_url": url, "storage_prefix": "s3://bucket/cfw"},
        state_dir=tmp_path,
        run_id="run1",
    )


@pytest.fixture
def server():
    with TesServer(users={USER: PASSWORD}) as srv:
        yield srv


@pytest.fixture
def driver(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNEL_SERVER_USER", USER)
    monkeypatch.setenv("FUNNEL_SERVER_PASSWORD", PASSWORD)
    monkeypatch.delenv("TES_TOKEN", raising=False)

    def make(retries: int = 3, fallback: str = "on-demand") -> SpotDriver:
        ctx = make_ctx(server.url, tmp_path)
        return SpotDriver(
            KIND, ctx, TesBackend(ctx), SpotPolicy(retries, fallback), tmp_path / "run"
        )

    return make


def preempt_first(server: TesServer, n: int, final: str = "COMPLETE"):
    """The server reclaims the first N submissions' machines, then ends with FINAL."""

    def service(task_id: str, spec, index: int) -> None:
        server.set_state(task_id, "PREEMPTED" if index < n else final)

    return service


def test_preempted_tasks_go_back_to_spot_then_on_demand_and_succeed(server, driver):
    spot = driver(retries=2)
    out = spot.run(job_spec("align", 12, preemptible=True), preempt_first(server, 3))
    assert out.state == JobState.SUCCEEDED
    sent = [server.task(t)["resources"]["preemptible"] for t in out.external_ids]
    assert sent == [True, True, True, False]  # two spot retries, then on demand
    assert out.messages[-1] == "job 12 (align) preempted 3 times; now on demand"
    records = spot.records()
    submitted = [r for r in records if r["event"] == "submitted"]
    assert [r["capacity"] for r in submitted] == ["spot", "spot", "spot", "on-demand"]
    assert [r.get("resubmission", 0) for r in submitted] == [0, 1, 2, 3]
    assert sum(r["event"] == "preempted" for r in records) == 3
    assert records[-1]["event"] == "succeeded"
    assert spot.tracker.run_log.info.extra["spot"] == {
        "preemptions": 3,
        "jobs_preempted": 1,
        "on_demand_fallbacks": 1,
    }
    assert spot.tracker.counts().failed == 0


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_preemptible_retries_bound_the_spot_attempts(server, driver, retries):
    spot = driver(retries=retries)
    out = spot.run(job_spec("align", 3, preemptible=True), preempt_first(server, 99))
    # every spot attempt preempted, and then the on-demand one too: it fails
    sent = [server.task(t)["resources"]["preemptible"] for t in out.external_ids]
    assert sent == [True] * (retries + 1) + [False]
    assert out.state == JobState.FAILED
    assert out.reason.startswith(f"job 3 (align) preempted {times(retries + 2)},")
    assert "the last time on demand; it fails" in out.reason


def test_fallback_fail_exhausts_the_spot_retries_and_names_the_preemptions(server, driver):
    spot = driver(retries=1, fallback="fail")
    out = spot.run(job_spec("align", 5, preemptible=True), preempt_first(server, 99))
    assert out.state == JobState.FAILED
    assert len(out.external_ids) == 2
    assert out.reason.startswith("job 5 (align) preempted twice, 1 spot retries used up")
    assert "spot.fallback is fail" in out.reason and "PREEMPTED" in out.reason
    assert spot.records()[-1]["event"] == "failed"
    assert spot.tracker.counts().failed == 1


def test_a_failure_that_is_not_a_preemption_is_not_retried(server, driver):
    spot = driver()
    out = spot.run(
        job_spec("align", 6, preemptible=True), preempt_first(server, 0, final="EXECUTOR_ERROR")
    )
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "EXECUTOR_ERROR" in out.reason


def test_an_on_demand_job_that_is_preempted_is_not_resubmitted(server, driver):
    spot = driver()
    out = spot.run(job_spec("align", 8), preempt_first(server, 1))
    assert out.state == JobState.FAILED and len(out.external_ids) == 1
    assert "not on spot capacity" in out.reason


# -- pending_timeout ---------------------------------------------------------------------------
def test_a_task_queued_for_pending_timeout_fails_with_the_servers_state(server, driver, tmp_path):
    from support.spot import Clock, PendingDriver

    clock = Clock()
    ctx = driver().ctx
    watch = PendingDriver(ctx, TesBackend(ctx), clock)
    spec = job_spec("align", 1)
    waiting = watch.backend.submit(spec, KIND.translate(spec, ctx), {})  # stays QUEUED
    assert watch.poll([waiting])[waiting].state == JobState.PENDING
    clock.minutes(29)
    assert watch.poll([waiting])[waiting].state == JobState.PENDING
    clock.minutes(1)
    status = watch.poll([waiting])[waiting]
    assert status.state == JobState.FAILED
    assert status.reason == (
        "waited 30m for capacity with none of the run's jobs running (pending_timeout): "
        "the TES task is QUEUED (no machine took it)"
    )
    assert server.task(waiting)["state"] == "CANCELED"  # cfw cancelled it


def test_the_clock_starts_again_while_another_job_runs(server, driver):
    from support.spot import Clock, PendingDriver

    clock = Clock()
    ctx = driver().ctx
    watch = PendingDriver(ctx, TesBackend(ctx), clock)
    ids = [
        watch.backend.submit(s, KIND.translate(s, ctx), {})
        for s in (job_spec("a", 1), job_spec("b", 2))
    ]
    server.set_state(ids[1], "RUNNING")
    for _ in range(4):
        clock.minutes(20)
        assert watch.poll(ids)[ids[0]].state == JobState.PENDING
    server.set_state(ids[1], "COMPLETE")
    clock.minutes(29)
    assert watch.poll(ids)[ids[0]].state == JobState.PENDING
    clock.minutes(1)
    assert watch.poll(ids)[ids[0]].state == JobState.FAILED

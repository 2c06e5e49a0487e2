"""The guard's adapter for google-batch against the fake Batch service: active jobs by the
environment's label, cancel deleting a run's jobs (twice: idempotent), `cfw down`'s
cancel-everything; without heartbeats, the checks that need them refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.google_batch.guard import GoogleBatchGuard
from cfw.backends.registry import get_kind
from cfw.core.errors import UserError
from cfw.core.guard import CANCEL, Action
from cfw.core.report import Reporter
from cfw.orchestration import guarding
from support.builders import context, job_spec
from support.fake_google import PROJECT, FakeGoogle

KIND = get_kind("google-batch")
ENV_ID, DEAD, LIVE = "google-batch-0a1b2c", "01011200abcd", "01011200beef"


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


def ctx(tmp_path: Path, run_id: str, env: str = ENV_ID):
    return context(
        "google-batch", {"project": PROJECT}, env=env, state_dir=tmp_path / ".cfw", run_id=run_id
    )


def submit(fake, tmp_path, run_id: str, n: int, env: str = ENV_ID) -> list[str]:
    be = GoogleBatchBackend(ctx(tmp_path, run_id, env), clients=fake.clients())
    ids = []
    for i in range(n):
        spec = job_spec("count", i, run_id=run_id, command="python -m snakemake")
        ids.append(be.submit(spec, KIND.translate(spec, be.ctx), {}))
    return ids


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_jobs_by_label_cancelled_by_run_twice(fake, tmp_path):
    dead = submit(fake, tmp_path, DEAD, 3)
    live = submit(fake, tmp_path, LIVE, 1)
    other = submit(fake, tmp_path, "01011200d00d", 1, env="google-batch-ffffff")
    fake.batch.advance(short(dead[0]), "RUNNING")
    fake.batch.advance(short(dead[2]), "SUCCEEDED")  # ended: not active
    adapter = GoogleBatchGuard(fake.clients(), ENV_ID)

    jobs = {j.job_id: j for j in adapter.jobs()}
    assert set(jobs) == {dead[0], dead[1], live[0]}
    assert jobs[dead[0]].state == "RUNNING" and jobs[live[0]].run_id == LIVE

    action = Action(CANCEL, "cancel", "test", DEAD, ())
    assert adapter.cancel(action) == sorted(dead[:2])
    assert fake.batch.jobs[short(dead[0])].status.state.name == "DELETION_IN_PROGRESS"
    assert adapter.cancel(action) == []  # deleting already: nothing more to cancel
    fake.batch.settle()
    assert adapter.cancel(action) == []  # gone
    assert {j.job_id for j in adapter.jobs()} == {live[0]}
    assert fake.batch.jobs[short(other[0])].status.state.name == "QUEUED"  # another environment's


def test_down_cancels_everything_and_the_heartbeat_checks_refuse(fake, tmp_path, monkeypatch):
    jobs = submit(fake, tmp_path, DEAD, 2) + submit(fake, tmp_path, LIVE, 1)
    monkeypatch.setattr(
        KIND, "guard_adapter", lambda c, e: GoogleBatchGuard(fake.clients(), c.env_id)
    )
    down_ctx = ctx(tmp_path, "down")
    cancelled = guarding.cancel_every_job(KIND, down_ctx, {}, Reporter(), sleep=lambda _: None)
    assert cancelled == 3
    assert all(fake.batch.jobs[short(j)].status.state.name == "DELETION_IN_PROGRESS" for j in jobs)
    assert guarding.cancel_every_job(KIND, down_ctx, {}, Reporter()) == 0

    guarded = guarding.Guarded(KIND, down_ctx, GoogleBatchGuard(fake.clients(), ENV_ID), None)
    with pytest.raises(UserError, match="keeps no run heartbeats yet") as caught:
        guarding._needs_heartbeats(guarded, "`cfw guard --once`")
    assert "cfw cancel google-batch RUN" in caught.value.hint

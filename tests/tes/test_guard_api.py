"""The tes guard's adapter for an existing TES server (cfw.backends.tes.guard.TesApiGuard)
against the TES server of the tests (tests/support/tes_server.py): tasks of the
environment listed by its cfw-id tag, an orphaned run's tasks cancelled by its cfw-run
tag and only those, idempotently; nothing to stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cfw.backends.tes.backend import TesBackend
from cfw.backends.tes.guard import TesApiGuard
from cfw.backends.tes.kind import KIND
from cfw.core import guard_check, heartbeat
from cfw.core.guard import CANCEL, STOP, Action, Settings
from support.builders import context, job_spec
from support.tes_server import TesServer

USER, PASSWORD = "alice", "pw-Lk3vQ9zT7"


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.delenv("TES_TOKEN", raising=False)
    monkeypatch.setenv("FUNNEL_SERVER_USER", USER)
    monkeypatch.setenv("FUNNEL_SERVER_PASSWORD", PASSWORD)


def backend_for(url: str, tmp_path, run_id: str) -> TesBackend:
    ctx = context(
        "tes",
        {"url": url, "storage": {"prefix": "s3://bucket/cfw"}},
        outputs={"tes_url": url, "storage_prefix": "s3://bucket/cfw"},
        state_dir=tmp_path,
        run_id=run_id,
    )
    return TesBackend(ctx)


def submit(backend: TesBackend, jobid: int) -> str:
    job = job_spec("work", jobid, run_id=backend.ctx.run_id, command="true", mem_mb=500)
    return backend.submit(job, KIND.translate(job, backend.ctx), {})


def test_an_orphaned_runs_tasks_are_cancelled_by_its_tag(tmp_path, creds):
    with TesServer(users={USER: PASSWORD}) as server:
        gone = backend_for(server.url, tmp_path, "gone1")
        live = backend_for(server.url, tmp_path, "live1")
        orphaned = [submit(gone, n) for n in range(2)]
        kept = submit(live, 9)
        done = submit(gone, 3)
        server.set_state(done, "COMPLETE")
        store = heartbeat.LocalDirStore(tmp_path / "beats")
        guard = TesApiGuard(api=gone.api, store=store, prefix="", env_id=gone.ctx.env_id)
        assert {(j.job_id, j.run_id) for j in guard.jobs()} == {
            *((t, "gone1") for t in orphaned),
            (kept, "live1"),
        }
        assert set(guard.cancel(Action(CANCEL, "stale", "test", "gone1"))) == set(orphaned)
        assert {server.task(t)["state"] for t in orphaned} == {"CANCELED"}
        assert server.task(kept)["state"] == "QUEUED"
        assert server.task(done)["state"] == "COMPLETE"
        assert guard.cancel(Action(CANCEL, "stale", "again", "gone1")) == []  # idempotent
        assert guard.stopped() is None
        assert "nothing to stop" in guard.stop(Action(STOP, "idle", "test"))

        # the check: live1 has no heartbeat, and its task is older than orphan_after
        later = datetime.now(UTC) + timedelta(minutes=20)
        outcome = guard_check.check(guard, Settings(), later)
        assert outcome.errors == ()
        assert [(a.cause, a.run_id) for a in outcome.decision.actions] == [("orphan", "live1")]
        assert server.task(kept)["state"] == "CANCELED"


def test_the_kind_gives_cfw_cancel_this_adapter_and_store(tmp_path, creds, monkeypatch):
    """Kind.guard_adapter of a `url:` environment: the server's tasks, with the run's TES
    credentials; heartbeats under the storage prefix."""
    import os

    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with TesServer(users={USER: PASSWORD}) as server:
        run = backend_for(server.url, tmp_path, "gone1")
        task = submit(run, 1)
        store, prefix = KIND.heartbeat_store(run.ctx, os.environ)
        assert (store.bucket, prefix) == ("bucket", "cfw")
        adapter = KIND.guard_adapter(run.ctx, os.environ)
        assert [(j.job_id, j.run_id) for j in adapter.jobs()] == [(task, "gone1")]
        assert adapter.cancel(Action(CANCEL, "cancel", "test", "gone1")) == [task]

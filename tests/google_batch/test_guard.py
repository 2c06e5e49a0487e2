"""The guard's adapter for google-batch against the fake Batch service and the GCS emulator:
run heartbeats as objects in the environment's bucket (last-modified from the storage,
listed page by page), written and removed by the executor's heartbeat thread; active jobs
by the environment's label; cancel deleting a run's jobs (twice: idempotent); a stale
heartbeat makes the guard's check and `cfw cancel` delete exactly that run's jobs, a live
one is left; `cfw status`'s runs; `cfw down`'s cancel-everything."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw import __version__
from cfw.backends.google_batch import guard as guard_module
from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.google_batch.guard import GoogleBatchGuard
from cfw.backends.google_batch.store import GcsStore
from cfw.backends.registry import dump_config, get_kind, resolve
from cfw.core import heartbeat
from cfw.core.claims import Busy
from cfw.core.errors import UserError
from cfw.core.guard import CANCEL, Action, Settings
from cfw.core.guard_check import check
from cfw.core.report import Reporter
from cfw.core.state import PHASE_UP, EnvState, Meta
from cfw.executor.heartbeats import start_heartbeats
from cfw.orchestration import guarding
from support.builders import context, job_spec
from support.fake_google import PROJECT, FakeGoogle

KIND = get_kind("google-batch")
ENV_ID, DEAD, LIVE = "google-batch-0a1b2c", "01011200abcd", "01011200beef"
ELSEWHERE = "ci@build-7"  # the owner of a run on another machine


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


@pytest.fixture
def bucket(gcs_env) -> str:
    """A fresh bucket in the emulator (one per test: the emulator lives for the session)."""
    from google.cloud import storage

    name = f"gcp-batch-{uuid.uuid4().hex[:10]}-data"
    storage.Client(project=PROJECT).create_bucket(name)
    return name


def ctx(tmp_path: Path, run_id: str, env: str = ENV_ID, bucket: str | None = None):
    c = context(
        "google-batch", {"project": PROJECT}, env=env, state_dir=tmp_path / ".cfw", run_id=run_id
    )
    if bucket:
        c.outputs["bucket"] = bucket
    return c


def submit(fake, tmp_path, run_id: str, n: int, env: str = ENV_ID) -> list[str]:
    be = GoogleBatchBackend(ctx(tmp_path, run_id, env), clients=fake.clients())
    ids = []
    for i in range(n):
        spec = job_spec("count", i, run_id=run_id, command="python -m snakemake")
        ids.append(be.submit(spec, KIND.translate(spec, be.ctx), {}))
    return ids


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def beat(run_id: str, owner: str = ELSEWHERE, pid: int = 4242) -> heartbeat.Heartbeat:
    first = heartbeat.start(
        run_id, kind="google-batch", env="google-batch", cfw_version="1", now=datetime.now(UTC)
    )
    return heartbeat.Heartbeat(**{**first.__dict__, "owner": owner, "pid": pid})


def dead_pid() -> int:
    """The pid of a process of this machine that was SIGKILLed (a runner gone)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()
    proc.wait()
    return proc.pid


def test_gcs_store_round_trip_pages_and_the_storages_clock(bucket):
    from google.cloud import storage

    store = GcsStore(storage.Client(project=PROJECT), bucket, page_size=2)
    assert store.get(".cfw/runs/nope.json") is None
    store.delete(".cfw/runs/nope.json")  # missing: no error

    before = datetime.now(UTC) - timedelta(seconds=5)
    for n in range(5):
        store.put(f".cfw/runs/r{n}.json", b"{}")
    store.put("workflow/.cfw/runs/elsewhere.json", b"{}")  # another prefix: not listed
    listed = store.list(".cfw/runs/")
    assert [o.key for o in listed] == [f".cfw/runs/r{n}.json" for n in range(5)]
    assert store.pages == 3  # 2 + 2 + 1: every page token followed
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert all(before <= o.last_modified <= after for o in listed)

    b = beat(DEAD)
    heartbeat.write(store, "", b)
    heartbeat.write(store, "", b.beat(datetime.now(UTC), 3))  # a rewrite replaces it
    stored = [s for s in heartbeat.read_all(store, "") if s.run_id == DEAD]
    assert [(s.key, s.record.jobs_active) for s in stored] == [(f".cfw/runs/{DEAD}.json", 3)]
    assert stored[0].last_modified >= listed[-1].last_modified
    heartbeat.remove(store, "", DEAD)
    heartbeat.remove(store, "", DEAD)  # gone already: no error
    assert store.get(f".cfw/runs/{DEAD}.json") is None


def test_a_missing_bucket_or_credentials_is_one_line(bucket, gcs_emulator, tmp_path, cfw):
    from google.cloud import storage

    gone = GcsStore(storage.Client(project=PROJECT), f"{bucket}-gone")
    with pytest.raises(UserError, match=f"bucket {bucket}-gone does not exist"):
        heartbeat.write(gone, "", beat(DEAD))
    # reads find nothing (a `cfw down` again after the bucket went is not stopped by them)
    assert gone.list(".cfw/runs/") == [] and gone.get(".cfw/guard.json") is None
    gone.delete(".cfw/guard.json")

    project = tmp_path / "proj"
    fake_up(project, bucket)
    home = tmp_path / "home"
    (home / "gcloud").mkdir(parents=True)
    no_credentials = {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "NO_GCE_CHECK": "true",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "STORAGE_EMULATOR_HOST": "",
    }
    for args in (["cancel", "google-batch"], ["guard", "google-batch", "--once"]):
        result = cfw(args, project, env=no_credentials)
        assert result.code == 2, result.output
        assert "no Google Cloud credentials" in result.stderr
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_a_runs_heartbeat_is_written_before_its_jobs_and_removed_at_its_end(bucket, tmp_path):
    """What the executor does at a run's start and shutdown (cfw.executor.executor)."""
    import os

    run = ctx(tmp_path, DEAD, bucket=bucket)
    warnings: list[str] = []
    beats = start_heartbeats(KIND, run, os.environ, lambda: 2, warnings.append)
    assert beats is not None and beats.written == 1
    store, prefix = KIND.heartbeat_store(run, os.environ)
    [stored] = heartbeat.read_all(store, prefix)
    assert stored.key == f".cfw/runs/{DEAD}.json"  # at the bucket's root, not a workflow's
    record = stored.record
    assert (record.run_id, record.kind, record.owner) == (DEAD, "google-batch", heartbeat.owner())
    assert record.pid == os.getpid() and record.cfw_version == __version__
    beats.stop()
    assert heartbeat.read_all(store, prefix) == [] and warnings == []


def test_jobs_by_label_cancelled_by_run_twice(fake, tmp_path):
    dead = submit(fake, tmp_path, DEAD, 3)
    live = submit(fake, tmp_path, LIVE, 1)
    other = submit(fake, tmp_path, "01011200d00d", 1, env="google-batch-ffffff")
    fake.batch.advance(short(dead[0]), "RUNNING")
    fake.batch.advance(short(dead[2]), "SUCCEEDED")  # ended: not active
    adapter = GoogleBatchGuard(fake.clients(), ENV_ID, store=None)

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


def test_the_guards_check_cancels_the_run_whose_heartbeat_is_stale(fake, bucket, tmp_path):
    """By the storage's clock: DEAD's heartbeat stopped before LIVE's last write. The
    check's orphan_after is seconds here (the config's floor is 5m) so that the test
    waits seconds, not minutes."""
    import os
    import time

    dead = submit(fake, tmp_path, DEAD, 2)
    live = submit(fake, tmp_path, LIVE, 1)
    placed = KIND.heartbeat_store(ctx(tmp_path, "g", bucket=bucket), os.environ)
    adapter = GoogleBatchGuard(fake.clients(), ENV_ID, *placed)
    heartbeat.write(adapter.store, "", beat(DEAD))
    time.sleep(4)
    heartbeat.write(adapter.store, "", beat(LIVE))
    settings = Settings(orphan_after=timedelta(seconds=3), idle_after=None)

    outcome = check(adapter, settings, datetime.now(UTC))
    assert outcome.errors == ()
    assert [(a.kind, a.cause, a.run_id) for a in outcome.decision.actions] == [
        (CANCEL, "stale", DEAD)
    ]
    states = {n: j.status.state.name for n, j in fake.batch.jobs.items()}
    assert {states[short(j)] for j in dead} == {"DELETION_IN_PROGRESS"}
    assert states[short(live[0])] == "QUEUED"
    record = heartbeat.read_record(adapter.store, "")  # in the bucket, for `cfw status`
    assert [(e.action, e.cause, e.run_id) for e in record.history] == [("cancel", "stale", DEAD)]

    fake.batch.settle()  # a second check, LIVE's runner still writing: nothing to cancel
    heartbeat.write(adapter.store, "", beat(LIVE))
    again = check(adapter, settings, datetime.now(UTC))
    assert [a for a in again.decision.actions if a.kind == CANCEL] == []
    assert fake.batch.jobs[short(live[0])].status.state.name == "QUEUED"


def fake_up(project: Path, bucket: str) -> None:
    """Record the environment as `cfw up` would after an apply: Terraform cannot apply the
    google module here; the outputs name the emulator's bucket."""
    (project / "environments").mkdir(parents=True, exist_ok=True)
    (project / "environments" / "google-batch.yaml").write_text(
        f"kind: google-batch\nproject: {PROJECT}\n"
    )
    resolved = resolve(project, "google-batch", environ={})
    state = EnvState(project, "google-batch")
    created = datetime.now(UTC).isoformat()
    state.save_meta(
        Meta(
            name="google-batch",
            kind="google-batch",
            env_id=ENV_ID,
            phase=PHASE_UP,
            created_at=created,
            updated_at=created,
            config=dump_config(resolved.config),
            cfw_version=__version__,
        )
    )
    outputs = KIND.output_placeholders(resolved.config, None)
    outputs.update(bucket=bucket, cfw_labels={**outputs["cfw_labels"], "cfw-id": ENV_ID})
    state.save_outputs(outputs)


def test_cfw_cancel_ends_the_run_whose_runner_is_gone_and_leaves_the_live_one(
    fake, bucket, tmp_path, monkeypatch
):
    """`cfw cancel google-batch` without RUN (and `cfw status`), in this process: the fake
    Batch service is reached through the SDK clients it gives (no endpoint setting reaches
    a `cfw` subprocess); the heartbeats are in the emulator through the kind's own store."""
    import os

    project = tmp_path / "proj"
    fake_up(project, bucket)
    monkeypatch.setattr(guard_module, "Clients", lambda p, r: fake.clients(p, r))
    dead = submit(fake, tmp_path, DEAD, 2)
    live = submit(fake, tmp_path, LIVE, 1)
    store, _ = KIND.heartbeat_store(ctx(tmp_path, "c", bucket=bucket), os.environ)
    # DEAD's runner ran here and was SIGKILLed; LIVE's runs elsewhere, its heartbeat fresh
    heartbeat.write(store, "", beat(DEAD, owner=heartbeat.owner(), pid=dead_pid()))
    heartbeat.write(store, "", beat(LIVE))

    shown = guarding.status_view(project, "google-batch", os.environ)
    runs = {r["run_id"]: r for r in shown["runs"]}
    assert (runs[DEAD]["live"], runs[DEAD]["jobs"]) == (False, 2)
    assert "is gone" in runs[DEAD]["gone"]
    assert (runs[LIVE]["live"], runs[LIVE]["owner"], runs[LIVE]["jobs"]) == (True, ELSEWHERE, 1)
    assert runs[LIVE]["heartbeat_age_s"] is not None and shown["jobs_active"] == 3

    cancelled = guarding.cancel(project, "google-batch", None, Reporter(), os.environ)
    assert cancelled == sorted(dead)
    states = {n: j.status.state.name for n, j in fake.batch.jobs.items()}
    assert {states[short(j)] for j in dead} == {"DELETION_IN_PROGRESS"}
    assert states[short(live[0])] == "QUEUED"
    assert [s.run_id for s in heartbeat.read_all(store, "")] == [LIVE]  # DEAD's removed

    fake.batch.settle()
    assert guarding.cancel(project, "google-batch", None, Reporter(), os.environ) == []
    assert guarding.cancel(project, "google-batch", DEAD, Reporter(), os.environ) == []
    assert fake.batch.jobs[short(live[0])].status.state.name == "QUEUED"


def test_down_refuses_a_live_run_elsewhere_then_cancels_everything(
    fake, bucket, tmp_path, monkeypatch
):
    import os

    jobs = submit(fake, tmp_path, DEAD, 2) + submit(fake, tmp_path, LIVE, 1)
    down_ctx = ctx(tmp_path, "down", bucket=bucket)
    monkeypatch.setattr(guard_module, "Clients", lambda p, r: fake.clients(p, r))
    store, _ = KIND.heartbeat_store(down_ctx, os.environ)
    heartbeat.write(store, "", beat(LIVE))
    with pytest.raises(Busy, match=f"in use by run {LIVE} \\({ELSEWHERE}"):
        guarding.cancel_every_job(KIND, down_ctx, os.environ, Reporter(), sleep=lambda _: None)
    assert all(fake.batch.jobs[short(j)].status.state.name == "QUEUED" for j in jobs)

    heartbeat.remove(store, "", LIVE)
    cancelled = guarding.cancel_every_job(
        KIND, down_ctx, os.environ, Reporter(), sleep=lambda _: fake.batch.settle()
    )
    assert cancelled == 3
    assert guarding.cancel_every_job(KIND, down_ctx, os.environ, Reporter()) == 0

"""The guard's adapter for the Kubernetes kinds against the fake API server: heartbeats as
ConfigMaps (times from the API server), active Jobs by the environment's cfw-id, cancel
deleting a run's Jobs by its label (twice: idempotent), and one guard check through it, all
within the runner Role (RBAC enforced)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cfw.backends._kube.guard import ConfigMapStore, KubeGuard
from cfw.backends._kube.rbac import role_rules
from cfw.backends.kubernetes import client, cloud
from cfw.backends.kubernetes.backend import KubernetesBackend
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.registry import get_kind
from cfw.core import heartbeat
from cfw.core.guard import CANCEL, Action, Settings
from cfw.core.guard_check import check
from cfw.orchestration.guarding import lines_of
from support.builders import context, job_spec
from support.fake_kube import FakeKube
from support.kubeconfig import write_kubeconfig

NS = "snakemake"
ENV_ID = "lab-0a1b2c"
OTHER_RUN = "0302bb00cafe"
KIND = get_kind("kubernetes")
S3_ENV = {
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "AKIAFAKEFAKEFAKE0001",
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "s3cr3t-value",
}


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


@pytest.fixture
def environ(fake, tmp_path) -> dict[str, str]:
    path = write_kubeconfig(tmp_path / "kube" / "config", fake.url, fake.token, ("lab",))
    return {"KUBECONFIG": str(path), **S3_ENV}


def make_config() -> KubernetesConfig:
    return KubernetesConfig.model_validate(
        {
            "kind": "kubernetes",
            "name": "lab",
            "context": "lab",
            "namespace": NS,
            "storage": {"prefix": "s3://lab-bucket/cfw"},
        }
    )


def submit(backend, jobid: int) -> str:
    spec = job_spec("align", jobid, run_id=backend.ctx.run_id, env=tuple(S3_ENV))
    return backend.submit(spec, KIND.translate(spec, backend.ctx), S3_ENV)


def backend(environ, tmp_path, run_id: str, env: str = ENV_ID) -> KubernetesBackend:
    ctx = context(
        "kubernetes",
        make_config(),
        name="lab",
        env=env,
        state_dir=tmp_path,
        run_id=run_id,
        outputs=None,
    )
    return KubernetesBackend(ctx, environ=environ)


@pytest.fixture
def runner(fake):
    """A user who holds the runner Role only."""
    fake.user = "alice"
    fake.bind(NS, role_rules(cloud.RUN_RULES), name="cfw-runner")
    fake.enforce_rbac = True


def test_configmap_store_round_trip_with_server_times(fake, environ, runner):
    store = ConfigMapStore(client.connect(make_config(), environ), NS, ENV_ID)
    before = datetime.now(UTC).replace(microsecond=0)
    beat = heartbeat.start(
        "0302aa00beef", kind="kubernetes", env="lab", cfw_version="1", now=before
    )
    heartbeat.write(store, "", beat)
    heartbeat.write(store, "", beat.beat(before, 3))  # a rewrite replaces it
    [stored] = heartbeat.read_all(store, "")
    assert stored.record.jobs_active == 3
    assert before - timedelta(seconds=2) <= stored.last_modified <= datetime.now(UTC)
    assert fake.all("configmaps")[0]["metadata"]["labels"]["cfw-id"] == ENV_ID
    other = ConfigMapStore(client.connect(make_config(), environ), NS, "lab-ffffff")
    assert heartbeat.read_all(other, "") == []  # another environment's store is apart
    heartbeat.remove(store, "", "0302aa00beef")
    heartbeat.remove(store, "", "0302aa00beef")  # gone already: no error
    assert heartbeat.read_all(store, "") == [] and fake.all("configmaps") == []


def test_jobs_listed_by_environment_and_cancelled_by_run_twice(
    fake,
    environ,
    tmp_path,
    runner,
):
    dead = backend(environ, tmp_path, "0302aa00beef")
    live = backend(environ, tmp_path, OTHER_RUN)
    foreign = backend(environ, tmp_path, "0302cc00d00d", env="lab-ffffff")
    dead_ids = [submit(dead, i) for i in range(3)]
    live_id = submit(live, 1)
    foreign_id = submit(foreign, 1)
    fake.start(dead_ids[0], NS)
    fake.finish(dead_ids[2], NS)  # ended: not active
    adapter = KubeGuard(client.connect(make_config(), environ), NS, ENV_ID)

    jobs = {j.job_id: j for j in adapter.jobs()}
    assert set(jobs) == {dead_ids[0], dead_ids[1], live_id}
    assert jobs[dead_ids[0]].state == "RUNNING" and jobs[dead_ids[1]].state == "PENDING"
    assert jobs[live_id].run_id == OTHER_RUN

    action = Action(CANCEL, "cancel", "test", "0302aa00beef", ())
    assert sorted(adapter.cancel(action)) == sorted(dead_ids[:2])
    assert {j.job_id for j in adapter.jobs()} == {live_id}  # being deleted: not active
    fake.collect_garbage()
    assert adapter.cancel(action) == []  # idempotent
    assert fake.get("jobs", NS, live_id) is not None
    assert fake.get("jobs", NS, foreign_id) is not None


def test_a_guard_check_cancels_the_stale_run_only(fake, environ, tmp_path, runner):
    dead = backend(environ, tmp_path, "0302aa00beef")
    live = backend(environ, tmp_path, OTHER_RUN)
    dead_id, live_id = submit(dead, 1), submit(live, 1)
    adapter = KubeGuard(client.connect(make_config(), environ), NS, ENV_ID)
    for run_id in ("0302aa00beef", OTHER_RUN):
        beat = heartbeat.start(
            run_id, kind="kubernetes", env="lab", cfw_version="1", now=datetime.now(UTC)
        )
        heartbeat.write(adapter.store, "", beat)
    # twenty minutes on: only the live run rewrote its heartbeat (the server's clock says so)
    later = datetime.now(UTC) + timedelta(minutes=20)
    for obj in fake.all("configmaps"):
        if "aa00beef" in obj["data"]["body"]:
            obj["metadata"]["managedFields"][0]["time"] = (
                datetime.now(UTC) - timedelta(minutes=1)
            ).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            obj["metadata"]["managedFields"][0]["time"] = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    for obj in fake.all("jobs"):
        obj["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"

    outcome = check(adapter, Settings(), later)

    assert outcome.errors == ()
    assert outcome.done == (f"stale: cancelled 1 job of run 0302aa00beef: {dead_id}",)
    assert fake.get("jobs", NS, dead_id)["metadata"].get("deletionTimestamp")
    assert not fake.get("jobs", NS, live_id)["metadata"].get("deletionTimestamp")
    record = heartbeat.read_record(adapter.store, "")
    assert record.checked_at == later.replace(microsecond=0)
    stored = heartbeat.read_all(adapter.store, "")
    lines = {line.run_id: line for line in lines_of(stored, [], timedelta(minutes=15), later)}
    assert lines[OTHER_RUN].live and not lines["0302aa00beef"].live

"""The guard's adapter for azure-batch against the fake Batch service and Azurite: run
heartbeats as blobs (last-modified from the storage), active tasks of this environment's
per-run jobs (by their metadata), cancel terminating a run's tasks and deleting its job
(twice: idempotent), one guard check and `cfw down`'s cancel-everything through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.backends.azure_batch.backend import AzureBatchBackend
from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.kind import KIND
from cfw.core import heartbeat
from cfw.core.claims import Busy
from cfw.core.guard import CANCEL, Action, Settings
from cfw.core.guard_check import check
from cfw.core.report import Reporter
from cfw.orchestration.guarding import cancel_every_job
from support.builders import context, job_spec

pytest_plugins = ["support.azure"]

BATCH_KEY = "ZmFrZS1iYXRjaC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ=="
POOLS = [{"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4}]
DEAD, LIVE = "0302aa00beef", "0302bb00cafe"


def env_ctx(fake, azurite, tmp_path: Path, run_id: str, env: str = "ab-0a1b2c"):
    cfg = AzureBatchConfig(name="ab", region="westeurope", pools=POOLS)
    outputs = KIND.output_placeholders(cfg, None)
    outputs.update(
        batch_account_url=fake.base_url,
        storage_blob_endpoint=azurite["endpoint"],
        storage_container_urls={c: f"{azurite['endpoint']}/{c}" for c in ("data", "logs")},
        identity_id="/subscriptions/s/resourceGroups/g/providers/x/nodes",
        identity_client_id="11111111-2222-3333-4444-555555555555",
    )
    return context(
        "azure-batch", cfg, name="ab", env=env, outputs=outputs, state_dir=tmp_path, run_id=run_id
    )


def environ(azurite) -> dict[str, str]:
    return {
        "AZ_BATCH_ACCOUNT_KEY": BATCH_KEY,
        "AZ_BATCH_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_KEY": azurite["key"],
    }


def submit(backend: AzureBatchBackend, jobid: int) -> str:
    spec = job_spec("step", jobid, run_id=backend.ctx.run_id, command="echo", image="img")
    payload = KIND.translate(spec, backend.ctx)
    return backend.submit(spec, payload, {})


def containers(azurite) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite["connection_string"])
    for name in ("data", "logs"):
        if not service.get_container_client(name).exists():
            service.create_container(name)


def test_blob_store_heartbeats(fake_batch, azurite, tmp_path):
    containers(azurite)
    ctx = env_ctx(fake_batch, azurite, tmp_path, DEAD)
    store, prefix = KIND.heartbeat_store(ctx, environ(azurite))
    before = datetime.now(UTC) - timedelta(seconds=5)
    beat = heartbeat.start(DEAD, kind="azure-batch", env="ab", cfw_version="1", now=before)
    heartbeat.write(store, prefix, beat)
    heartbeat.write(store, prefix, beat.beat(before, 2))
    [stored] = heartbeat.read_all(store, prefix)
    assert stored.record.jobs_active == 2
    assert before <= stored.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    heartbeat.remove(store, prefix, DEAD)
    heartbeat.remove(store, prefix, DEAD)  # gone already: no error
    assert heartbeat.read_all(store, prefix) == []
    assert store.get("no/such/key") is None


def test_tasks_of_this_environment_cancelled_by_run_twice(fake_batch, azurite, tmp_path):
    containers(azurite)
    env = environ(azurite)
    dead = AzureBatchBackend(env_ctx(fake_batch, azurite, tmp_path, DEAD), environ=env)
    live = AzureBatchBackend(env_ctx(fake_batch, azurite, tmp_path, LIVE), environ=env)
    other = AzureBatchBackend(
        env_ctx(fake_batch, azurite, tmp_path, "0302cc00d00d", env="ab-ffffff"), environ=env
    )
    dead_ids = [submit(dead, i) for i in range(3)]
    live_id, other_id = submit(live, 1), submit(other, 1)
    job, _, task = dead_ids[0].partition("/")
    fake_batch.start(job, task)
    fake_batch.finish(*dead_ids[2].split("/"))  # ended: not active
    adapter = KIND.guard_adapter(env_ctx(fake_batch, azurite, tmp_path, "guard"), env)

    jobs = {j.job_id: j for j in adapter.jobs()}
    assert set(jobs) == {dead_ids[0], dead_ids[1], live_id}
    assert jobs[dead_ids[0]].state == "RUNNING" and jobs[live_id].run_id == LIVE

    action = Action(CANCEL, "cancel", "test", DEAD, ())
    assert adapter.cancel(action) == sorted(dead_ids[:2])
    assert fake_batch.task(*dead_ids[0].split("/")).state == "completed"
    assert adapter.cancel(action) == []  # idempotent
    assert {j.job_id for j in adapter.jobs()} == {live_id}
    assert fake_batch.task(*other_id.split("/")).state == "active"  # another environment's


def test_guard_check_and_down_cancel_everything(fake_batch, azurite, tmp_path):
    containers(azurite)
    env = environ(azurite)
    dead = AzureBatchBackend(env_ctx(fake_batch, azurite, tmp_path, DEAD), environ=env)
    dead_id = submit(dead, 1)
    adapter = KIND.guard_adapter(env_ctx(fake_batch, azurite, tmp_path, "guard"), env)
    # the run died 20 minutes ago: its heartbeat is old by the storage's clock
    later = datetime.now(UTC) + timedelta(minutes=20)
    beat = heartbeat.start(DEAD, kind="azure-batch", env="ab", cfw_version="1", now=later)
    heartbeat.write(adapter.store, "", beat)
    outcome = check(adapter, Settings(), later)
    assert outcome.errors == ()
    assert outcome.done == (f"stale: cancelled 1 job of run {DEAD}: {dead_id}",)
    job = fake_batch.jobs.get(dead_id.split("/")[0])
    assert job is None or job.state == "deleting"  # the run's job goes, as its end would

    down_ctx = env_ctx(fake_batch, azurite, tmp_path, "down")
    heartbeat.remove(adapter.store, "", DEAD)  # fresh by the storage's clock: not in the way
    beat = heartbeat.start(LIVE, kind="azure-batch", env="ab", cfw_version="1", now=later)
    heartbeat.write(adapter.store, "", beat)  # a live run elsewhere: down refuses, naming it
    with pytest.raises(Busy, match=f"in use by run {LIVE} "):
        cancel_every_job(KIND, down_ctx, env, Reporter())
    heartbeat.remove(adapter.store, "", LIVE)
    live = AzureBatchBackend(env_ctx(fake_batch, azurite, tmp_path, LIVE), environ=env)
    live_ids = [submit(live, i) for i in range(2)]
    assert cancel_every_job(KIND, down_ctx, env, Reporter(), sleep=lambda _: None) == 2
    job = fake_batch.jobs.get(live_ids[0].split("/")[0])
    assert job is None or job.state == "deleting"
    assert cancel_every_job(KIND, down_ctx, env, Reporter()) == 0

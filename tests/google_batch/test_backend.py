"""The google-batch backend against fakes of Batch, Cloud Logging and Secret Manager at the
SDK boundary (tests/support/fake_google.py): the official clients talk gRPC to a local
server that keeps job states, pages its lists and answers NOT_FOUND after a delete. RPCs
and cfw's own SDK calls are counted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from cfw.backends.base import EnvContext, JobState, JobStatus
from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.google_batch.cloud import leftovers
from cfw.backends.google_batch.translate import job_id
from cfw.backends.registry import get_kind
from cfw.core.errors import WorkFailed
from support.builders import context, job_spec
from support.fake_google import PROJECT, Abort, FakeGoogle

KIND = get_kind("google-batch")
ENV_ID, RUN = "google-batch-0a1b2c", "01011200abcd"
SECRET = "tok-3f1e9a77c2d54b10"


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


def environment(tmp_path: Path, run_id: str = RUN) -> EnvContext:
    """A run on an environment that came up (outputs = the names the module gives)."""
    return context(
        "google-batch",
        {"project": PROJECT},
        env=ENV_ID,
        state_dir=tmp_path / ".cfw",
        run_id=run_id,
    )


@pytest.fixture
def backend(fake, tmp_path):
    be = GoogleBatchBackend(environment(tmp_path), clients=fake.clients())
    yield be
    be.clients.close()


def spec(jobid: int, run_id: str = RUN, env=("API_TOKEN",), **resources):
    return job_spec(
        "count", jobid, run_id=run_id, command="python -m snakemake", env=env, **resources
    )


def submit(be: GoogleBatchBackend, n: int, start: int = 0, **resources) -> list[str]:
    ids = []
    for i in range(start, start + n):
        job = spec(i, run_id=be.ctx.run_id, **resources)
        ids.append(be.submit(job, KIND.translate(job, be.ctx), {"API_TOKEN": SECRET}))
    return ids


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_submit_creates_the_job_and_keeps_env_values_in_secret_manager(fake, backend):
    ids = submit(backend, 3, gpu_model="nvidia-tesla-t4")
    assert [short(i) for i in ids] == [job_id(spec(i)) for i in range(3)]
    assert fake.rpcs["CreateJob"] == 3
    # one secret per variable and run, whatever the number of jobs
    assert fake.rpcs["CreateSecret"] == 1 and fake.rpcs["AddSecretVersion"] == 1
    (name,) = fake.secrets.secrets
    assert name.endswith(f"/secrets/gcp-batch-0a1b2c-{RUN}-API_TOKEN")
    assert fake.secrets.values[name] == [SECRET.encode()]
    assert fake.secrets.secrets[name].labels["cfw-id"] == ENV_ID
    # the service received a reference, never the value
    for request in fake.batch.requests:
        assert SECRET.encode() not in type(request).serialize(request)
        env = request.job.task_groups[0].task_spec.runnables[0].environment
        assert env.secret_variables["API_TOKEN"].startswith(f"projects/{PROJECT}/secrets/")
    created = fake.batch.jobs[short(ids[0])]
    assert created.allocation_policy.instances[0].policy.accelerators[0].type_ == "nvidia-tesla-t4"
    # the end of the run removes the secrets
    backend.close()
    assert not fake.secrets.secrets and fake.rpcs["DeleteSecret"] == 1


def test_a_resubmission_that_already_exists_is_the_same_job(fake, backend):
    job = spec(1)
    first = backend.submit(job, KIND.translate(job, backend.ctx), {"API_TOKEN": SECRET})
    again = backend.submit(job, KIND.translate(job, backend.ctx), {"API_TOKEN": SECRET})
    assert first == again and len(fake.batch.jobs) == 1
    assert fake.rpcs["GetJob"] == 1  # the ALREADY_EXISTS answer was looked up


def test_status_is_one_paged_list_call_per_cycle(fake, backend, tmp_path):
    ids = submit(backend, 250)
    other = GoogleBatchBackend(environment(tmp_path, run_id="01011300ffff"), clients=fake.clients())
    submit(other, 120, start=1000)  # another run of the same environment
    states = {
        0: ("SCHEDULED", None),
        1: ("RUNNING", None),
        2: ("SUCCEEDED", 0),
        3: ("FAILED", 1),
        149: ("FAILED", 50001),
        249: ("FAILED", 50005),
    }
    for i, (state, code) in states.items():
        fake.batch.advance(short(ids[i]), state, exit_code=code)
    before = dict(fake.rpcs)
    result = backend.poll(ids)
    # 250 jobs of this run: the unfinished ones in one list call (246: three pages of 100),
    # then, as 4 left it (at least the run's 3 pages), one list of the run; no per-job call
    assert backend.clients.calls["list_jobs"] == 2
    assert fake.rpcs["ListJobs"] - before.get("ListJobs", 0) == 6
    assert fake.rpcs["GetJob"] == before.get("GetJob", 0)
    assert set(result) == set(ids)
    assert result[ids[0]].state == JobState.PENDING
    assert result[ids[1]].state == JobState.RUNNING
    assert result[ids[2]].state == JobState.SUCCEEDED
    assert (result[ids[3]].state, result[ids[3]].exit_code) == (JobState.FAILED, 1)
    assert result[ids[3]].reason == "exit code 1"
    assert "preempted" in result[ids[149]].reason  # found on the second page
    assert "runtime" in result[ids[249]].reason  # and on the third
    assert result[ids[100]].state == JobState.PENDING  # QUEUED
    assert backend.poll(ids)[ids[3]] == result[ids[3]]  # a finished job stays as it ended
    assert backend.clients.calls["list_jobs"] == 3  # the unfinished only: three pages
    assert fake.rpcs["ListJobs"] - before.get("ListJobs", 0) == 9
    other.clients.close()


def test_cancel_deletes_and_gone_is_success(fake, backend):
    ids = submit(backend, 3)
    fake.batch.advance(short(ids[0]), "RUNNING")
    backend.cancel(ids)
    assert fake.rpcs["DeleteJob"] == 3
    # deleting: still listed, shown as cancelled
    assert {s.state for s in backend.poll(ids).values()} == {JobState.CANCELLED}
    fake.batch.settle()
    with pytest.raises(Abort):  # the fake's own view: gone
        fake.batch._id(ids[0])
    backend.cancel(ids)  # NOT_FOUND from the service is success
    assert fake.rpcs["DeleteJob"] == 6
    assert backend.clients.calls["delete_job"] == 6


def test_a_cancelled_job_stays_cancelled_once_deleted(fake, backend, monkeypatch):
    monkeypatch.setattr("cfw.backends.google_batch.backend.MISSING_GRACE_S", 0.0)
    running, queued, done = submit(backend, 3)
    fake.batch.advance(short(running), "RUNNING")
    fake.batch.advance(short(done), "SUCCEEDED")
    backend.cancel([running, queued])
    expected = JobStatus(JobState.CANCELLED, reason="cancelled")
    assert backend.poll([running, queued]) == {running: expected, queued: expected}
    fake.batch.settle()  # deleted: Batch lists them no more
    ids = [running, queued, done]
    assert backend.poll(ids) == {
        running: expected,
        queued: expected,
        done: JobStatus(JobState.SUCCEEDED),
    }
    fresh = GoogleBatchBackend(backend.ctx, clients=fake.clients())  # another run's view
    assert fresh.poll([running])[running].state == JobState.FAILED
    fresh.clients.close()


def test_a_job_missing_from_the_list(fake, backend, monkeypatch):
    (ext,) = submit(backend, 1)
    fake.batch.jobs.pop(short(ext))  # deleted behind cfw's back
    assert backend.poll([ext])[ext].state == JobState.PENDING  # may just not be listed yet
    monkeypatch.setattr("cfw.backends.google_batch.backend.MISSING_GRACE_S", 0.0)
    status = backend.poll([ext])[ext]
    assert status.state == JobState.FAILED and "no longer in Google Batch" in status.reason


def test_status_errors_are_retried_then_fatal(fake, backend, monkeypatch):
    ids = submit(backend, 1)
    fake.fail["ListJobs"] = (grpc.StatusCode.INTERNAL, "backend error")
    monkeypatch.setattr("cfw.backends.google_batch.backend.POLL_FAILURES", 3)
    assert backend.poll(ids) == {} and backend.poll(ids) == {}  # no news: jobs stay active
    with pytest.raises(WorkFailed, match="INTERNAL"):
        backend.poll(ids)
    del fake.fail["ListJobs"]
    assert backend.poll(ids)[ids[0]].state == JobState.PENDING


def test_logs_come_from_cloud_logging_with_the_status_events(fake, backend, monkeypatch):
    ids = submit(backend, 2)
    fake.batch.advance(short(ids[0]), "RUNNING")
    fake.batch.advance(short(ids[0]), "FAILED", exit_code=3)
    mine = [f"line {i}" for i in range(250)]
    fake.logging.write(fake.batch.jobs[short(ids[0])], mine)
    fake.logging.write(fake.batch.jobs[short(ids[1])], ["not mine"])
    fake.logging.write(fake.batch.jobs[short(ids[0])], ["agent noise"], log="batch_agent_logs")
    text = backend.logs(ids[0])
    body = text.split("# --- task output (Cloud Logging, batch_task_logs) ---\n")[1]
    assert body.splitlines() == mine
    assert "FAILED" in text.splitlines()[0] and "Task exited with code 3" in text
    assert fake.rpcs["ListLogEntries"] == 3  # 250 lines, pages of 100
    assert backend.clients.calls["list_log_entries"] == 1
    # the newest lines when there are more than the limit
    monkeypatch.setattr("cfw.backends.google_batch.client.LOG_LINES", 10)
    tail = backend.logs(ids[0]).split("batch_task_logs) ---\n")[1].splitlines()
    assert tail == mine[-10:]


def test_logs_of_a_deleted_job(fake, backend):
    (ext,) = submit(backend, 1)
    backend.cancel([ext])
    fake.batch.settle()
    assert "no longer exists" in backend.logs(ext)


def test_the_kind_loads_this_backend():
    assert KIND.backend_class() is GoogleBatchBackend


def test_leftovers_lists_what_still_carries_the_id(fake, backend):
    ids = submit(backend, 2)
    fake.batch.advance(short(ids[0]), "SUCCEEDED", exit_code=0)
    clients = fake.clients()
    clients._http_get = lambda url: 200 if "/storage/v1/b/" in url else 404
    known = {"bucket": "gcp-batch-0a1b2c-data", "service_account": "sa@x", "network": "n"}
    left = leftovers(clients, ENV_ID, known)
    assert left == [
        f"Batch job {ids[1]} (queued)",
        f"secret projects/123456789012/secrets/gcp-batch-0a1b2c-{RUN}-API_TOKEN",
        "bucket gcp-batch-0a1b2c-data",
    ]
    backend.close()
    fake.batch.advance(short(ids[1]), "CANCELLED")
    clients._http_get = lambda url: 404
    assert leftovers(clients, ENV_ID, known) == []
    clients.close()


# -- the ttl: no job outlives it (cfw.backends.google_batch.ttl) -------------------------------
def expiring(tmp_path: Path, minutes: float) -> EnvContext:
    ctx = environment(tmp_path)
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    labels = {"cfw-id": ENV_ID, "cfw-expires-at": expires.strftime("%Y%m%dt%H%M%Sz")}
    return replace(ctx, outputs={**ctx.outputs, "cfw_labels": labels})


def run_limit(fake, job_name: str) -> float:
    task = fake.batch.jobs[short(job_name)].task_groups[0].task_spec
    return task.max_run_duration.total_seconds()


def test_no_job_outlives_the_ttl(fake, tmp_path):
    be = GoogleBatchBackend(expiring(tmp_path, 90), clients=fake.clients())
    try:
        [unlimited] = submit(be, 1)
        assert 89 * 60 <= run_limit(fake, unlimited) <= 90 * 60  # the time left, at most
        [short_one] = submit(be, 1, start=1, runtime=30)
        assert run_limit(fake, short_one) == 30 * 60  # its own shorter limit stays
        [long_one] = submit(be, 1, start=2, runtime=600)
        assert run_limit(fake, long_one) <= 90 * 60
    finally:
        be.clients.close()


def test_past_the_ttl_nothing_is_submitted(fake, tmp_path):
    be = GoogleBatchBackend(expiring(tmp_path, -1), clients=fake.clients())
    try:
        with pytest.raises(WorkFailed, match="no job is started after it"):
            submit(be, 1)
        assert fake.rpcs.get("CreateJob", 0) == 0
    finally:
        be.clients.close()


def test_without_a_ttl_jobs_keep_their_own_limit(fake, backend):
    [job] = submit(backend, 1, runtime=30)
    assert run_limit(fake, job) == 30 * 60
    [free] = submit(backend, 1, start=1)
    assert run_limit(fake, free) == 0

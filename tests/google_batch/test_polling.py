"""Status requests per cycle follow the active jobs, not the finished ones: the list asks
for the run's unfinished jobs only (a state filter, which the fake parses as the service
does); a job that finished since the last cycle is read by name once, or found in one list
of the run when many finished at once."""

from __future__ import annotations

import pytest

from cfw.backends.base import JobState
from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.registry import get_kind
from support.builders import context, job_spec
from support.fake_google import PROJECT, FakeGoogle

KIND = get_kind("google-batch")
RUN = "01011200abcd"


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


@pytest.fixture
def backend(fake, tmp_path):
    ctx = context(
        "google-batch",
        {"project": PROJECT},
        env="google-batch-0a1b2c",
        state_dir=tmp_path / ".cfw",
        run_id=RUN,
    )
    be = GoogleBatchBackend(ctx, clients=fake.clients())
    yield be
    be.clients.close()


def submit(backend, jobs: range) -> list[str]:
    ids = []
    for i in jobs:
        s = job_spec("count", i, run_id=RUN, command="python -m snakemake")
        ids.append(backend.submit(s, KIND.submission(s, backend.ctx), {}))
    return ids


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def rpcs_of_a_cycle(fake, backend, active: list[str]) -> int:
    before = fake.rpcs["ListJobs"] + fake.rpcs["GetJob"]
    statuses = backend.poll(active)
    assert {s.state for s in statuses.values()} <= {JobState.PENDING, JobState.RUNNING}
    return fake.rpcs["ListJobs"] + fake.rpcs["GetJob"] - before


def test_requests_per_cycle_do_not_grow_with_finished_jobs(fake, backend):
    active = submit(backend, range(150))
    for ext in active[::3]:
        fake.batch.advance(short(ext), "RUNNING")
    alone = rpcs_of_a_cycle(fake, backend, active)
    assert alone == 2  # 150 active jobs: one list, two pages of 100
    for batch in range(3):  # 3 x 200 jobs come and end beside them
        ended = submit(backend, range(1000 + 200 * batch, 1200 + 200 * batch))
        for i, ext in enumerate(ended):
            fake.batch.advance(short(ext), "SUCCEEDED" if i % 4 else "FAILED", exit_code=i % 4)
        finals = backend.poll(active + ended)
        assert all(finals[ext].state.finished for ext in ended)
        # the 600 finished jobs are still in Batch, and not in the status list
        assert rpcs_of_a_cycle(fake, backend, active) == alone
    assert fake.batch.jobs[short(ended[0])].status.state.name == "FAILED"


def test_a_job_that_ended_between_cycles_is_read_once_by_name(fake, backend):
    ids = submit(backend, range(250))
    backend.poll(ids)
    fake.batch.advance(short(ids[7]), "SUCCEEDED", exit_code=0)
    before = dict(fake.rpcs)
    statuses = backend.poll(ids)
    assert statuses[ids[7]].state == JobState.SUCCEEDED
    assert fake.rpcs["ListJobs"] - before["ListJobs"] == 3  # the 249 unfinished
    assert fake.rpcs["GetJob"] - before.get("GetJob", 0) == 1  # cheaper than the run's list
    backend.poll(ids)
    assert fake.rpcs["GetJob"] - before.get("GetJob", 0) == 1  # final: not asked again

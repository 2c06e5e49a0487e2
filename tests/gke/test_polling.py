"""Status requests per cycle follow the active jobs, not the finished ones: the Jobs that
succeeded stay in the cluster for ttlSecondsAfterFinished, and the list leaves them out
(a field selector the API server supports, and the fake too, refusing others like it)."""

from __future__ import annotations

import pytest

from cfw.backends._kube import client as kube_client
from cfw.backends.base import JobState
from cfw.backends.gke.backend import GkeBackend
from cfw.backends.gke.config import GkeConfig, node_pools
from cfw.backends.gke.kind import KIND
from support.builders import context, job_spec
from support.fake_kube import FakeKube

NS = "cfw-jobs"
RUN = "03021200beef"


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


@pytest.fixture
def backend(fake, tmp_path):
    config = GkeConfig(project="my-project", name="gke")
    outputs = {
        "namespace": NS,
        "service_account": "cfw-jobs",
        "project": "my-project",
        "node_pools": {p.name: p.machine_type for p in node_pools(config)},
    }
    ctx = context("gke", config, outputs=outputs, state_dir=tmp_path, run_id=RUN)
    return GkeBackend(ctx, kube=kube_client.connect(fake.url, None, lambda: fake.token))


def submit(backend, jobs: range) -> list[str]:
    ids = []
    for i in jobs:
        s = job_spec("align", i, run_id=RUN, command="python -m snakemake", env=("API_TOKEN",))
        ids.append(backend.submit(s, KIND.translate(s, backend.ctx), {"API_TOKEN": "t"}))
    return ids


def requests_of_a_cycle(fake, backend, active: list[str]) -> int:
    fake.reset_calls()
    statuses = backend.poll(active)
    assert {s.state for s in statuses.values()} <= {JobState.PENDING, JobState.RUNNING}
    return len(fake.calls)


def test_requests_per_cycle_do_not_grow_with_finished_jobs(fake, backend, monkeypatch):
    monkeypatch.setattr(kube_client, "PAGE", 10)  # pages of 10: growth shows at once
    active = submit(backend, range(25))
    for ext in active[::2]:
        fake.start(ext, NS)
    alone = requests_of_a_cycle(fake, backend, active)
    assert alone == 3  # 25 active jobs: one list, three pages
    for batch in range(3):  # 3 x 100 jobs come and succeed beside them
        done = submit(backend, range(1000 + 100 * batch, 1100 + 100 * batch))
        for ext in done:
            fake.finish(ext, NS)
        finals = backend.poll(active + done)
        assert all(finals[ext].state == JobState.SUCCEEDED for ext in done)
        # the 300 succeeded Jobs are still in the cluster (their TTL), and not in the list
        assert requests_of_a_cycle(fake, backend, active) == alone
    assert len(fake.pods_of(done[0], NS)) == 1 and fake.get("jobs", NS, done[0]) is not None


def test_a_job_that_succeeded_between_cycles_is_read_once_by_name(fake, backend, monkeypatch):
    monkeypatch.setattr(kube_client, "PAGE", 10)
    ids = submit(backend, range(40))
    backend.poll(ids)
    fake.finish(ids[7], NS)  # one of 40: cheaper to read it than to list the run (4 pages)
    fake.reset_calls()
    statuses = backend.poll(ids)
    assert statuses[ids[7]].state == JobState.SUCCEEDED
    assert fake.calls == [("list", "jobs")] * 4 + [("get", "jobs")]
    fake.reset_calls()
    backend.poll(ids)  # it is final now: not asked again
    assert fake.calls == [("list", "jobs")] * 4


def test_the_fake_refuses_fields_the_api_server_cannot_select_by(fake, backend):
    with pytest.raises(Exception, match="field label not supported"):
        backend.kube.list_jobs(NS, f"cfw-run={RUN}", "status.active=1")
    submit(backend, range(2))
    assert len(backend.kube.list_jobs(NS, f"cfw-run={RUN}", "status.successful!=1")) == 2
    assert backend.kube.list_jobs(NS, f"cfw-run={RUN}", "status.successful=1") == []

"""The gke backend against a fake Kubernetes API server (tests/support/fake_kube.py):
submission with the run's Secret, status with one list per cycle whatever the number of
jobs (pagination included), failure reasons from real pod status shapes, logs, cancel
with foreground deletion, and the end-of-run cleanup."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cfw.backends._kube import backend as kube_backend
from cfw.backends._kube import client as kube_client
from cfw.backends._kube.manifest import TTL_ANNOTATION
from cfw.backends.base import JobSpec, JobState
from cfw.backends.gke.backend import GkeBackend
from cfw.backends.gke.cloud import WORKLOAD_IDENTITY, runner_subjects
from cfw.backends.gke.config import GkeConfig, node_pools
from cfw.backends.gke.kind import KIND
from cfw.core.errors import WorkFailed
from support.builders import context, job_spec
from support.fake_kube import FakeKube

NS = "cfw-jobs"
RUN = "03021200beef"
POD_STATUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "gke" / "pods.yaml").read_text())
SECRET_VALUE = "s3cr3t-value-never-in-a-manifest"


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


class Clock:
    """The backend's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def backend(fake, tmp_path, clock):
    config = GkeConfig(project="my-project", name="gke")
    outputs = {
        "namespace": NS,
        "service_account": "cfw-jobs",
        "project": "my-project",
        "node_pools": {p.name: p.machine_type for p in node_pools(config)},
    }
    ctx = context("gke", config, outputs=outputs, state_dir=tmp_path, run_id=RUN)
    kube = kube_client.connect(fake.url, None, lambda: fake.token)
    return GkeBackend(ctx, kube=kube, clock=clock)


def spec(jobid: int, **resources) -> JobSpec:
    return job_spec(
        "align",
        jobid,
        run_id=RUN,
        command="python -m snakemake --target-jobs 'align:sample=a'",
        env=("SNAKEMAKE_STORAGE_GCS_PROJECT", "API_TOKEN"),
        **resources,
    )


def submit(backend, jobid: int, **resources) -> str:
    s = spec(jobid, **resources)
    payload = KIND.translate(s, backend.ctx)
    return backend.submit(
        s, payload, {"SNAKEMAKE_STORAGE_GCS_PROJECT": "my-project", "API_TOKEN": SECRET_VALUE}
    )


def test_submit_stores_env_values_only_in_the_run_secret(fake, backend):
    ids = [submit(backend, i) for i in (1, 2, 3)]
    secret = fake.get("secrets", NS, f"cfw-{RUN}-env")
    assert base64.b64decode(secret["data"]["API_TOKEN"]).decode() == SECRET_VALUE
    assert secret["metadata"]["labels"]["cfw-run"] == RUN
    assert fake.count("create", "secrets") == 1  # once per run, not per job
    sent = KIND.translate(spec(3), backend.ctx)["job"]
    stored = fake.get("jobs", NS, ids[2])
    assert stored["spec"] == sent["spec"]  # what the API server got is exactly the manifest
    assert stored["metadata"]["labels"] == sent["metadata"]["labels"]
    for ext in ids:
        job = fake.get("jobs", NS, ext)
        text = json.dumps(job)
        assert SECRET_VALUE not in text and "my-project" not in text
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in env} == {
            "API_TOKEN": f"cfw-{RUN}-env",
            "SNAKEMAKE_STORAGE_GCS_PROJECT": f"cfw-{RUN}-env",
        }


@pytest.mark.parametrize("jobs", [1, 12, 120])
def test_one_list_call_per_cycle_whatever_the_number_of_jobs(fake, backend, jobs):
    ids = [submit(backend, i) for i in range(jobs)]
    fake.reset_calls()
    statuses = backend.poll(ids)
    assert {s.state for s in statuses.values()} == {JobState.PENDING}
    for ext in ids[::2]:
        fake.start(ext, NS)
    statuses = backend.poll(ids)
    assert sum(s.state == JobState.RUNNING for s in statuses.values()) == len(ids[::2])
    for ext in ids:
        fake.finish(ext, NS)
    statuses = backend.poll(ids)
    assert {s.state for s in statuses.values()} == {JobState.SUCCEEDED}
    # no per-job call, no pod list; the last cycle's list leaves the succeeded Jobs out,
    # and as every open job left it, one list of the run finds them
    assert fake.calls == [("list", "jobs")] * 4
    backend.poll(ids)  # every job is finished: nothing to ask
    assert fake.calls == [("list", "jobs")] * 4


def test_list_pagination_follows_continue(fake, backend, monkeypatch):
    monkeypatch.setattr(kube_client, "PAGE", 7)
    ids = [submit(backend, i) for i in range(20)]
    for ext in ids[:5]:
        fake.finish(ext, NS)
    fake.reset_calls()
    statuses = backend.poll(ids)
    # the 15 that did not succeed (7 + 7 + 1), then, for the 5 that left that list, the
    # run's list (7 + 7 + 6): each a list followed page by page
    assert fake.count("list", "jobs") == 6
    assert sum(s.state == JobState.SUCCEEDED for s in statuses.values()) == 5
    assert sum(s.state == JobState.PENDING for s in statuses.values()) == 15
    fake.max_page = 4  # the server may return fewer than asked: follow its token
    fake.reset_calls()
    assert len(backend.poll(ids)) == 20 and fake.count("list", "jobs") == 4  # 15 open / 4


def test_other_runs_jobs_are_not_seen(fake, backend):
    mine = submit(backend, 1)
    other = dict(KIND.translate(spec(2), backend.ctx)["job"])
    other["metadata"] = {
        **other["metadata"],
        "name": "cfw-other-2-align-a1",
        "labels": {**other["metadata"]["labels"], "cfw-run": "otherrun"},
    }
    backend.kube.create_job(NS, other)
    fake.finish("cfw-other-2-align-a1", NS)
    assert backend.poll([mine])[mine].state == JobState.PENDING


FAILURES = [
    ("oom_killed", {}, ["OOMKilled", "memory limit of 1024Mi", "mem_mb"], 137),
    ("evicted_ephemeral", {"disk_mb": 2048}, ["evicted", "ephemeral local storage"], 137),
    ("spot_preempted", {"preemptible": True}, ["Spot VM preempted", "imminent node shutdown"], 143),
    ("node_gone", {}, ["its node disappeared", "PodGC"], None),
    ("exit_code", {}, ["exit code 1"], 1),
]


@pytest.mark.parametrize(
    ("shape", "resources", "fragments", "code"), FAILURES, ids=[f[0] for f in FAILURES]
)
def test_failure_reason_from_the_pod(fake, backend, shape, resources, fragments, code):
    ext = submit(backend, 7, **resources)
    fake.start(ext, NS)
    fake.fail(ext, NS, POD_STATUS[shape])
    fake.reset_calls()
    status = backend.poll([ext])[ext]
    # a spot node's loss is a preemption (resubmitted, executor/retry.py), not a failure
    assert status.state == (JobState.PREEMPTED if shape == "spot_preempted" else JobState.FAILED)
    for fragment in fragments:
        assert fragment in status.reason, status.reason
    assert status.exit_code == code
    assert fake.calls == [("list", "jobs"), ("list", "pods")]


def test_deadline_exceeded(fake, backend):
    ext = submit(backend, 8, runtime=30)
    fake.start(ext, NS)
    fake.fail(
        ext,
        NS,
        None,
        reason="DeadlineExceeded",
        message="Job was active longer than specified deadline",
        delete_pods=True,
    )
    status = backend.poll([ext])[ext]
    assert status.state == JobState.FAILED
    assert "deadline exceeded" in status.reason and "30 min" in status.reason
    assert "gone" in backend.logs(ext)


# -- the ttl: no Job outlives it (activeDeadlineSeconds, cfw.core.ttl) ---------------------
def expiring(backend, minutes: float) -> GkeBackend:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    labels = {"cfw-id": "gke-0a1b2c", "cfw-expires-at": expires.strftime("%Y%m%dt%H%M%Sz")}
    backend.ctx = replace(backend.ctx, outputs={**backend.ctx.outputs, "cfw_labels": labels})
    return backend


def test_no_job_outlives_the_ttl(fake, backend):
    expiring(backend, 90)
    free, short_one = submit(backend, 1), submit(backend, 2, runtime=30)
    long_one = submit(backend, 3, runtime=600)
    deadlines = {
        e: fake.get("jobs", NS, e)["spec"]["activeDeadlineSeconds"]
        for e in (free, short_one, long_one)
    }
    assert 89 * 60 <= deadlines[free] <= 90 * 60  # the time left, at most
    assert deadlines[short_one] == 30 * 60  # its own shorter runtime stays
    assert 89 * 60 <= deadlines[long_one] <= 90 * 60
    for job in (free, long_one):
        stored = fake.get("jobs", NS, job)
        kubernetes_validate.validate(stored, kubernetes_validate.latest_version(), strict=True)
    assert TTL_ANNOTATION not in fake.get("jobs", NS, short_one)["metadata"]["annotations"]
    # the Job controller ends it at the deadline: the reason names the ttl, not the runtime
    fake.start(long_one, NS)
    fake.fail(
        long_one,
        NS,
        None,
        reason="DeadlineExceeded",
        message="Job was active longer than specified deadline",
        delete_pods=True,
    )
    status = backend.poll([long_one])[long_one]
    assert status.state == JobState.FAILED
    assert "stopped at the environment's ttl (cfw-expires-at 20" in status.reason, status.reason
    assert "runtime" not in status.reason


def test_past_the_ttl_no_job_is_created(fake, backend):
    expiring(backend, -1)
    with pytest.raises(WorkFailed, match="no job is started after it"):
        submit(backend, 1)
    assert fake.count("create", "jobs") == 0


def test_without_a_ttl_a_job_keeps_its_own_deadline(fake, backend):
    free, limited = submit(backend, 1), submit(backend, 2, runtime=30)
    assert "activeDeadlineSeconds" not in fake.get("jobs", NS, free)["spec"]
    assert fake.get("jobs", NS, limited)["spec"]["activeDeadlineSeconds"] == 30 * 60


def test_many_failures_in_one_cycle_cost_one_pod_list(fake, backend):
    ids = [submit(backend, i) for i in range(15)]
    for ext in ids:
        fake.start(ext, NS)
    for ext in ids[:10]:
        fake.fail(ext, NS, POD_STATUS["oom_killed"])
    fake.reset_calls()
    statuses = backend.poll(ids)
    assert sum(s.state == JobState.FAILED for s in statuses.values()) == 10
    assert fake.calls == [("list", "jobs"), ("list", "pods")]


def test_image_pull_error_fails_fast_and_stops_the_job(fake, backend, monkeypatch):
    monkeypatch.setattr(kube_backend, "PENDING_CHECK_S", 0.0)
    ext = submit(backend, 9)
    fake.set_pod_status(ext, NS, POD_STATUS["image_pull_backoff"])
    status = backend.poll([ext])[ext]
    assert status.state == JobState.FAILED
    assert "image pull error (ImagePullBackOff)" in status.reason
    assert "repository does not exist" in status.reason
    assert fake.get("jobs", NS, ext)["metadata"]["deletionTimestamp"]
    log = backend.logs(ext)
    assert "waiting to start: ImagePullBackOff" in log


def test_pending_jobs_are_explained_at_most_every_interval(fake, backend, clock):
    ids = [submit(backend, i) for i in range(5)]
    interval = kube_backend.PENDING_CHECK_S
    lists = []
    for clock.now in [clock.now + t for t in (0, 10, interval, interval + 15, 2 * interval)]:
        fake.reset_calls()
        assert {s.state for s in backend.poll(ids).values()} == {JobState.PENDING}
        lists.append(fake.count("list", "pods"))
        assert fake.count("list", "jobs") == 1
    # waiting < interval: no look; then one pod list for all five, at most once per interval
    assert lists == [0, 0, 1, 0, 1]


def test_an_unschedulable_job_waits_its_grace_period_then_fails(fake, backend, clock):
    ext = submit(backend, 9)
    fake.set_pod_status(ext, NS, POD_STATUS["unschedulable"])
    start = clock.now
    grace = backend.config.pending_timeout.total_seconds()
    assert grace == 30 * 60  # pending_timeout, every kind's default
    for clock.now in (start, start + 30, start + grace):  # the pods are looked at each time
        assert backend.poll([ext])[ext].state == JobState.PENDING  # the autoscaler may help
    assert "deletionTimestamp" not in fake.get("jobs", NS, ext)["metadata"]
    clock.now = start + 30 + grace  # Unschedulable since the first look, at start + 30
    status = backend.poll([ext])[ext]
    assert status.state == JobState.FAILED
    assert status.reason.startswith("unschedulable for 30 min")
    assert "0/3 nodes are available" in status.reason and "Insufficient memory" in status.reason
    assert fake.get("jobs", NS, ext)["metadata"]["deletionTimestamp"]  # stopped, not left
    clock.now += 3600
    assert backend.poll([ext])[ext] == status


def test_an_unschedulable_job_queues_while_the_run_progresses(fake, backend, clock):
    backend.config = backend.config.model_copy(update={"pending_timeout": timedelta(0)})
    running, queued = submit(backend, 20), submit(backend, 21)
    fake.start(running, NS)  # the pool is at max_nodes: the queued pod waits for its node
    fake.set_pod_status(queued, NS, POD_STATUS["unschedulable"])
    for _ in range(3):
        clock.now += 60
        assert backend.poll([running, queued])[queued].state == JobState.PENDING
    fake.finish(running, NS)  # the node frees; if no pool can take the pod now, it fails
    clock.now += 60
    assert backend.poll([running, queued])[queued].state == JobState.FAILED


def test_a_scheduled_pod_restarts_the_unschedulable_clock(fake, backend, clock):
    ext = submit(backend, 22)
    grace = backend.config.pending_timeout.total_seconds()
    fake.set_pod_status(ext, NS, POD_STATUS["unschedulable"])
    clock.now += 30
    backend.poll([ext])
    fake.set_pod_status(ext, NS, {"phase": "Pending", "conditions": []})  # node on its way
    clock.now += grace / 2
    backend.poll([ext])
    fake.set_pod_status(ext, NS, POD_STATUS["unschedulable"])
    clock.now += grace / 2 + 30
    assert backend.poll([ext])[ext].state == JobState.PENDING  # not continuous: wait again


def test_logs_of_a_failed_job(fake, backend):
    ext = submit(backend, 10)
    fake.start(ext, NS)
    pod = fake.pods_of(ext, NS)[0]["metadata"]["name"]
    fake.logs[pod] = "".join(f"line {i}\n" for i in range(6000)) + "Error in rule align\n"
    fake.fail(ext, NS, POD_STATUS["exit_code"])
    backend.poll([ext])
    fake.reset_calls()
    text = backend.logs(ext)
    assert text.endswith("Error in rule align\n")
    assert len(text.splitlines()) == kube_backend.LOG_LINES
    assert fake.calls == [("log", "pods")]


def test_no_log_before_the_container_starts_says_why(fake, backend):
    ext = submit(backend, 18)
    pod = fake.pods_of(ext, NS)[0]["metadata"]["name"]
    assert backend.logs(ext) == (
        f'no log from pod {pod}: container "job" in pod "{pod}" is waiting to start: '
        "ContainerCreating\n"
    )


def test_cancel_deletes_in_the_foreground_and_is_idempotent(fake, backend):
    ext = submit(backend, 11)
    fake.start(ext, NS)
    backend.cancel([ext])
    job = fake.get("jobs", NS, ext)
    assert job["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert fake.pods_of(ext, NS), "foreground: the pods go first, the Job after them"
    backend.cancel([ext])  # while it is being deleted
    fake.collect_garbage()
    assert fake.get("jobs", NS, ext) is None and not fake.pods_of(ext, NS)
    backend.cancel([ext])  # 404 now: success
    assert fake.count("delete", "jobs") == 3
    assert backend.poll([ext])[ext].state == JobState.CANCELLED


def test_a_job_deleted_behind_our_back_is_a_failure(fake, backend):
    ext = submit(backend, 12)
    backend.kube.delete_job(NS, ext)
    fake.collect_garbage()
    status = backend.poll([ext])[ext]
    assert status.state == JobState.FAILED and "no longer exists" in status.reason


def test_close_stops_unfinished_jobs_and_deletes_the_secret(fake, backend):
    done, running = submit(backend, 13), submit(backend, 14)
    fake.finish(done, NS)
    fake.start(running, NS)
    backend.poll([done, running])
    backend.close()
    assert fake.get("secrets", NS, f"cfw-{RUN}-env") is None
    assert fake.get("jobs", NS, running)["metadata"]["deletionTimestamp"]
    assert "deletionTimestamp" not in fake.get("jobs", NS, done)["metadata"]
    backend.close()  # nothing left to do; no error


def test_runner_objects_are_created_then_updated(fake, backend):
    labels = {"app.kubernetes.io/managed-by": "cfw", "cfw-id": "gke-0a1b2c"}
    for _ in range(2):
        backend.kube.ensure_runner_objects(
            namespace=NS,
            service_account="cfw-jobs",
            annotations={WORKLOAD_IDENTITY: "cfwj-0a1b2c-gke@my-project.iam.gserviceaccount.com"},
            subjects=runner_subjects(["user:alice@example.com", "group:lab@example.com"]),
            labels=labels,
        )
    assert fake.count("create", "namespaces") == 2 and fake.count("replace", "namespaces") == 1
    ksa = fake.get("serviceaccounts", NS, "cfw-jobs")
    assert ksa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("cfwj-")
    role = fake.get("roles", NS, "cfw-runner")
    rules = {(tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules[("jobs",)] >= {"create", "list", "delete"} and rules[("pods/log",)] == {"get"}
    assert rules[("secrets",)] >= {"create", "delete"}
    binding = fake.get("rolebindings", NS, "cfw-runner")
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("User", "alice@example.com"),
        ("Group", "lab@example.com"),
    ]
    assert fake.get("namespaces", "", NS)["metadata"]["labels"]["cfw-id"] == "gke-0a1b2c"


def test_a_refused_token_is_a_clear_error(fake, backend):
    ext = submit(backend, 15)
    stale = kube_client.connect(fake.url, None, lambda: "expired-token")
    backend.kube = stale
    with pytest.raises(WorkFailed, match="refused to list Jobs in cfw-jobs: 401"):
        backend.poll([ext])


def test_a_passing_outage_keeps_the_last_known_states(fake, backend):
    ext = submit(backend, 16)
    fake.start(ext, NS)
    assert backend.poll([ext])[ext].state == JobState.RUNNING
    fake.outages = [503]
    assert backend.poll([ext])[ext].state == JobState.RUNNING
    fake.finish(ext, NS)
    assert backend.poll([ext])[ext].state == JobState.SUCCEEDED


def test_logs_from_a_fresh_backend_as_cfw_logs_uses_it(fake, backend):
    ext = submit(backend, 17)
    fake.start(ext, NS)
    pod = fake.pods_of(ext, NS)[0]["metadata"]["name"]
    fake.logs[pod] = "Building DAG of jobs...\nFinished job 0.\n"
    fake.finish(ext, NS)
    fresh = GkeBackend(backend.ctx, kube=kube_client.connect(fake.url, None, lambda: fake.token))
    fake.reset_calls()
    assert fresh.logs(ext) == "Building DAG of jobs...\nFinished job 0.\n"
    assert fake.calls == [("list", "pods"), ("log", "pods")]

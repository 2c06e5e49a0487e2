"""The guard's Cloud Function for gke (cfw.backends.gke.guard through
cfw.backends._google.guard_function), called in-process as the Functions Framework calls it,
with the variables the root module sets, against the fake GKE control plane
(support.fake_google: ClusterManager with operations and FAILED_PRECONDITION while one runs)
and the fake Kubernetes API server over TLS with the cluster's CA, RBAC enforced for the
function's service account, which holds only the guard's Role (rbac.GUARD_RULES):

- an orphaned run's Jobs are deleted, a live run's left, and the record is a ConfigMap where
  `cfw status` reads it;
- past the ttl every Job goes and every pool (the system pool too) is scaled to zero,
  waiting for an operation that was already running on the cluster;
- idle scales the job pools only; a later check past the ttl stops the system pool too;
- with the Kubernetes API out of reach only the ttl is enforced, and the log says so.

Operations finish while the guard pauses between polls (no real sleep)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import flask
import pytest
from google.oauth2.credentials import Credentials

from cfw.backends._google import guard_function
from cfw.backends._kube import client as kube_client
from cfw.backends._kube.guard import ConfigMapStore
from cfw.backends._kube.manifest import ENV_ID_LABEL, MANAGED_BY, RUN_LABEL
from cfw.backends.gke import guard as gke_guard
from cfw.backends.gke.cloud import runner_subjects
from cfw.core import heartbeat
from support.fake_google import FakeGoogle
from support.fake_kube import FakeKube

PROJECT, LOCATION, NS = "my-project", "europe-west4", "snakemake"
ENV_ID, DEAD, LIVE = "gke-0a1b2c", "01011200dead", "01011200beef"
GUARD = f"cfwg-0a1b2c-gke@{PROJECT}.iam.gserviceaccount.com"
POOLS = {"system": 1, "standard": 3, "gpu": 1}


@pytest.fixture
def kube(tmp_path):
    server = FakeKube(tls=True)
    server.ca_file = tmp_path / "ca.pem"
    server.ca_file.write_bytes(server.ca_pem)
    admin = kube_client.connect(server.url, server.ca_file, lambda: server.token)
    admin.ensure_guard_role(NS, runner_subjects([f"serviceAccount:{GUARD}"]), {})
    server.user, server.enforce_rbac = GUARD, True  # from here on, the function's account
    yield server
    server.close()


@pytest.fixture
def google(kube, monkeypatch):
    fake = FakeGoogle()
    cluster = fake.container.add_cluster(
        PROJECT, LOCATION, "cfw-gke-0a1b2c", POOLS, endpoint=kube.endpoint
    )
    fake.container.clusters[cluster].master_auth.cluster_ca_certificate = base64.b64encode(
        kube.ca_pem
    ).decode()
    creds = Credentials(token=kube.token)
    monkeypatch.setattr(
        gke_guard.require("google.auth", "gke"), "default", lambda **_: (creds, None)
    )
    monkeypatch.setattr(gke_guard, "cluster_manager", lambda c: fake.cluster_manager())
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # time passes: what runs on the cluster finishes
        pauses.append(seconds)
        for name in fake.container.running():
            fake.container.finish(name)

    monkeypatch.setattr(gke_guard, "pause", pause)
    fake.cluster, fake.pauses = cluster, pauses
    yield fake
    fake.stop()


def job(kube: FakeKube, name: str, run: str, age: timedelta) -> None:
    created = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {MANAGED_BY: "cfw", ENV_ID_LABEL: ENV_ID, RUN_LABEL: run}
    kube._store(
        "jobs",
        NS,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": labels, "creationTimestamp": created},
            "status": {"active": 1},
        },
    )


def store(kube: FakeKube) -> ConfigMapStore:
    """The namespace's heartbeats, as `cfw status` and the runners reach them."""
    return ConfigMapStore(
        kube_client.connect(kube.url, kube.ca_file, lambda: kube.token), NS, ENV_ID
    )


def call(monkeypatch, cluster: str, **settings: str) -> dict:
    variables = {
        "CFW_GUARD_ADAPTER": "cfw.backends.gke.guard:from_environ",
        "CFW_GUARD_CLUSTER": cluster,
        "CFW_GUARD_NAMESPACE": NS,
        "CFW_GUARD_ENV_ID": ENV_ID,
        "CFW_GUARD_INTERVAL": "300",
        "CFW_GUARD_ORPHAN_AFTER": "900",
        "CFW_GUARD_IDLE_AFTER": "1800",
        "CFW_GUARD_EXPIRES_AT": "never",
        **settings,
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    body, status, _ = guard_function.guard(flask.Request.from_values(method="POST", json={}))
    assert status == 200
    return json.loads(body)


def autoscaling(google) -> dict[str, bool]:
    cluster = google.container.clusters[google.cluster]
    return {p.name: p.autoscaling.enabled for p in cluster.node_pools}


def sizes(google) -> dict[str, int]:
    return {k.rsplit("/", 1)[-1]: v for k, v in google.container.sizes.items()}


def test_an_orphaned_runs_jobs_are_deleted_within_the_guard_role(kube, google, monkeypatch):
    job(kube, "dead-1", DEAD, timedelta(hours=1))
    job(kube, "dead-2", DEAD, timedelta(hours=1))
    job(kube, "live-1", LIVE, timedelta(hours=1))
    kube.user = None  # the runner writes its heartbeat with its own rights
    first = heartbeat.start(LIVE, kind="gke", env="gke", cfw_version="1", now=datetime.now(UTC))
    heartbeat.write(store(kube), "", first)
    kube.user = GUARD

    result = call(monkeypatch, google.cluster)
    assert result["errors"] == []
    assert [(a["action"], a["cause"], a["run"]) for a in result["actions"]] == [
        ("cancel", "orphan", DEAD)
    ]
    left = {j["metadata"]["name"]: j["metadata"] for j in kube.all("jobs")}
    assert "live-1" in left and not left["live-1"].get("deletionTimestamp")
    assert all(n not in left or left[n].get("deletionTimestamp") for n in ("dead-1", "dead-2"))
    assert set(autoscaling(google).values()) == {True}  # nothing stopped
    assert google.container.operations == {}

    kube.user = None
    record = heartbeat.read_record(store(kube), "")  # what `cfw status gke` shows
    assert [(e.action, e.cause, e.run_id) for e in record.history] == [("cancel", "orphan", DEAD)]


def test_past_the_ttl_every_job_goes_and_every_pool_to_zero(kube, google, monkeypatch):
    job(kube, "any-1", LIVE, timedelta(minutes=1))
    pool = f"{google.cluster}/nodePools/standard"
    busy = google.container._start(pool, "UPGRADE_NODES", 3)  # GKE upgrading the pool
    assert busy.status.name == "RUNNING"

    result = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert result["errors"] == []
    assert [(a["action"], a["cause"]) for a in result["actions"]] == [
        ("cancel", "ttl"),
        ("stop", "ttl"),
    ]
    assert autoscaling(google) == {"system": False, "standard": False, "gpu": False}
    assert sizes(google) == {"system": 0, "standard": 0, "gpu": 0}
    assert google.rpcs["SetNodePoolAutoscaling"] > len(POOLS)  # refused while busy, retried
    assert google.pauses and not google.container.running()
    assert any("scaled node pools" in line for line in result["done"])
    assert kube.get("jobs", NS, "any-1")["metadata"].get("deletionTimestamp")

    changes = google.rpcs["SetNodePoolSize"]
    again = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert [a["action"] for a in again["actions"]] == []  # stopped stays stopped
    assert google.rpcs["SetNodePoolSize"] == changes


def test_idle_scales_the_job_pools_and_the_ttl_later_the_system_pool(kube, google, monkeypatch):
    idle = call(monkeypatch, google.cluster, CFW_GUARD_IDLE_AFTER="0")  # no run, no job
    assert [(a["action"], a["cause"]) for a in idle["actions"]] == [("stop", "idle")]
    assert autoscaling(google) == {"system": True, "standard": False, "gpu": False}
    assert sizes(google) == {"system": 1, "standard": 0, "gpu": 0}
    assert call(monkeypatch, google.cluster, CFW_GUARD_IDLE_AFTER="0")["actions"] == []

    past = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert [(a["action"], a["cause"]) for a in past["actions"]] == [("stop", "ttl")]
    assert autoscaling(google) == {"system": False, "standard": False, "gpu": False}
    assert sizes(google)["system"] == 0


def test_without_the_kubernetes_api_only_the_ttl_is_enforced(kube, google, monkeypatch, capsys):
    google.container.clusters[google.cluster].endpoint = "127.0.0.1:9"  # nothing listens
    idle = call(monkeypatch, google.cluster, CFW_GUARD_IDLE_AFTER="0")
    out = capsys.readouterr().out
    assert "cannot be reached" in out and "enforcing the ttl only" in out
    assert [a["cause"] for a in idle["actions"]] == ["idle"]
    assert idle["done"] == [] and "not stopping for idle" in idle["errors"][0]
    assert set(autoscaling(google).values()) == {True}

    past = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert past["errors"] == [] and [a["cause"] for a in past["actions"]] == ["ttl"]
    assert sizes(google) == {"system": 0, "standard": 0, "gpu": 0}


def test_a_failed_operation_is_an_error_the_next_check_retries(kube, google, monkeypatch):
    from google.rpc import status_pb2

    def finish_failing(seconds: float) -> None:
        for name in google.container.running():
            google.container.operations[name].error = status_pb2.Status(
                code=9, message="node pool is being repaired"
            )
            google.container.operations[name].status = "DONE"

    monkeypatch.setattr(gke_guard, "pause", finish_failing)
    result = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert "node pool is being repaired" in result["errors"][0]
    assert result["stopped_since"] is None  # not remembered as stopped: tried again next


def test_cfw_guard_once_stops_the_same_pools(kube, google, monkeypatch):
    """`cfw guard gke --once` from a machine: the kind's adapter is the cloud guard's, with
    the user's credentials (cfw.backends.gke.cloud)."""
    from cfw.backends.gke import cloud
    from cfw.backends.registry import get_kind
    from cfw.core.guard import Settings
    from cfw.core.guard_check import check
    from support.builders import context

    kube.user = None  # the user's own rights
    monkeypatch.setattr(cloud, "credentials", lambda project: Credentials(token=kube.token))
    monkeypatch.setattr(cloud, "cluster_manager", lambda creds: google.cluster_manager())
    monkeypatch.setattr(
        cloud,
        "connect",
        lambda c, o: kube_client.connect(kube.url, kube.ca_file, lambda: kube.token),
    )
    job(kube, "any-1", DEAD, timedelta(minutes=1))
    ctx = context("gke", {"project": PROJECT}, env=ENV_ID)
    ctx.outputs.update(
        project=PROJECT,
        cluster_location=LOCATION,
        cluster_name="cfw-gke-0a1b2c",
        namespace=NS,
        cfw_labels={"cfw-id": ENV_ID, "cfw-expires-at": "20200101t000000z"},
    )
    adapter = get_kind("gke").guard_adapter(ctx, {})
    expired = Settings(idle_after=None, expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    outcome = check(adapter, expired, datetime.now(UTC))
    assert outcome.errors == ()
    assert [(a.kind, a.cause) for a in outcome.decision.actions] == [
        ("cancel", "ttl"),
        ("stop", "ttl"),
    ]
    assert sizes(google) == {"system": 0, "standard": 0, "gpu": 0}
    assert kube.get("jobs", NS, "any-1")["metadata"].get("deletionTimestamp")


def test_a_cluster_busy_past_the_deadline_is_an_error_not_a_hang(kube, google, monkeypatch):
    pool = f"{google.cluster}/nodePools/gpu"
    google.container._start(pool, "UPGRADE_NODES", 1)  # and it never ends
    monkeypatch.setattr(gke_guard, "pause", lambda seconds: None)
    monkeypatch.setattr(gke_guard, "WAIT_S", 0.0)
    result = call(monkeypatch, google.cluster, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert "GKE kept refusing the change" in result["errors"][0]
    assert "Please wait and try again" in result["errors"][0]
    assert result["stopped_since"] is None


def test_a_cluster_that_is_gone_is_reported_not_a_crash(kube, google, monkeypatch, capsys):
    """After a half-finished `cfw down`: GKE answers NOT_FOUND; the check says so."""
    gone = google.cluster.replace("cfw-gke-0a1b2c", "cfw-gke-gone")
    result = call(monkeypatch, gone, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert "cannot be reached" in capsys.readouterr().out
    assert [a["cause"] for a in result["actions"]] == ["ttl"]
    assert any("NotFound" in e and "cfw-gke-gone" in e for e in result["errors"])
    assert set(autoscaling(google).values()) == {True}  # the other cluster is not touched

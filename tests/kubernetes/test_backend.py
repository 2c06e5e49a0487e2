"""Kind `kubernetes` against the fake Kubernetes API server (tests/support/fake_kube.py),
reached through a kubeconfig as kubectl would: the run's Secret with the storage
credentials (never in a manifest), one list per status cycle, failure reasons, logs,
cancel, the end-of-run cleanup; the permission check with SelfSubjectAccessReviews
answered from the cluster's RBAC; `down`'s cleanup by label and its verification; and a
whole run by a user who holds nothing but the runner Role (RBAC enforced)."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
import yaml

from cfw.backends._kube import backend as kube_backend
from cfw.backends._kube.rbac import role_rules
from cfw.backends.base import JobState
from cfw.backends.kubernetes import client, cloud
from cfw.backends.kubernetes.backend import KubernetesBackend
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.registry import get_kind
from cfw.core.errors import UserError, WorkFailed
from support.builders import context, job_spec
from support.fake_kube import FakeKube
from support.kubeconfig import write_kubeconfig

NS = "snakemake"
RUN = "0302aa00beef"
ENV_ID = "lab-0a1b2c"
KIND = get_kind("kubernetes")
POD_STATUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "gke" / "pods.yaml").read_text())
ACCESS_KEY = "AKIAFAKEFAKEFAKE0001"
SECRET_KEY = "s3cr3t-value-never-in-a-manifest"
S3_ENV = {
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": ACCESS_KEY,
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET_KEY,
    "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": "http://minio.lab:9000",
}
POOLS = [
    {"name": "general", "selector": {"node.kubernetes.io/instance-type": "m5.2xlarge"}},
    {"name": "spot", "spot_preset": "eks"},
    {"name": "gpu", "selector": {"nvidia.com/gpu.product": "Tesla-T4"}, "gpus": 2},
]


@pytest.fixture
def fake():
    server = FakeKube()
    yield server
    server.close()


@pytest.fixture
def environ(fake, tmp_path) -> dict[str, str]:
    path = write_kubeconfig(tmp_path / "kube" / "config", fake.url, fake.token, ("lab", "prod"))
    return {"KUBECONFIG": str(path), **S3_ENV}


def make_config(**settings) -> KubernetesConfig:
    data = {
        "kind": "kubernetes",
        "name": "lab",
        "context": "lab",
        "namespace": NS,
        "storage": {"prefix": "s3://lab-bucket/cfw", "endpoint_url": "http://minio.lab:9000"},
        "node_pools": POOLS,
        **settings,
    }
    return KubernetesConfig.model_validate(data)


def backend_for(environ, tmp_path, config=None, run_id=RUN) -> KubernetesBackend:
    config = config or make_config()
    ctx = context("kubernetes", config, name="lab", state_dir=tmp_path, run_id=run_id, outputs=None)
    return KubernetesBackend(ctx, environ=environ)


@pytest.fixture
def backend(environ, tmp_path) -> KubernetesBackend:
    return backend_for(environ, tmp_path)


def submit(backend, jobid: int, env=tuple(S3_ENV), values=S3_ENV, **resources) -> str:
    spec = job_spec("align", jobid, run_id=backend.ctx.run_id, env=env, **resources)
    payload = KIND.translate(spec, backend.ctx)
    return backend.submit(spec, payload, values)


def test_submit_keeps_storage_credentials_in_the_run_secret(fake, backend):
    ids = [submit(backend, i) for i in (1, 2, 3)]
    secret = fake.get("secrets", NS, f"cfw-{RUN}-env")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == S3_ENV
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "cfw",
        "cfw-env": "lab",
        "cfw-id": ENV_ID,
        "cfw-run": RUN,
    }
    assert fake.count("create", "secrets") == 1  # once per run, not per job
    for ext in ids:
        text = json.dumps(fake.get("jobs", NS, ext))
        assert SECRET_KEY not in text and ACCESS_KEY not in text and "minio.lab" not in text


def test_a_gcs_key_file_travels_in_the_secret_and_is_mounted(fake, environ, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "private_key": "-----BEGIN xyz"}))
    config = make_config(storage={"prefix": "gcs://lab-bucket/cfw"})
    gcs = backend_for({**environ, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}, tmp_path, config)
    project = {"SNAKEMAKE_STORAGE_GCS_PROJECT": "lab-project"}
    ext = submit(gcs, 1, env=tuple(project), values=project)
    with pytest.raises(UserError, match=r"variable\(s\) MISSING have no value"):
        submit(gcs, 2, env=(*project, "MISSING"), values=project)
    secret = fake.get("secrets", NS, f"cfw-{RUN}-env")
    assert base64.b64decode(secret["data"]["gcs-key.json"]).decode() == key.read_text()
    pod = fake.get("jobs", NS, ext)["spec"]["template"]["spec"]
    assert "BEGIN xyz" not in json.dumps(pod)
    assert pod["volumes"][1]["secret"]["secretName"] == f"cfw-{RUN}-env"


@pytest.mark.parametrize(
    ("storage", "environ_extra", "drop", "fragments"),
    [
        ({"prefix": "s3://b"}, {}, tuple(S3_ENV), ["no S3 keys", "AWS_ACCESS_KEY_ID"]),
        ({"prefix": "gcs://b"}, {}, (), ["GOOGLE_APPLICATION_CREDENTIALS names no key file"]),
        (
            {"prefix": "gcs://b"},
            {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            (),
            ["/nonexistent/key.json cannot be read"],
        ),
        (
            {"prefix": "az://c", "account_name": "lab"},
            {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"},
            (),
            ["AZURE_CLIENT_SECRET is not set", "workload-identity"],
        ),
    ],
)
def test_a_run_whose_jobs_could_not_reach_the_storage_stops_before_any_job(
    fake, environ, tmp_path, storage, environ_extra, drop, fragments
):
    env = {k: v for k, v in {**environ, **environ_extra}.items() if k not in drop}
    with pytest.raises(UserError) as caught:
        backend_for(env, tmp_path, make_config(storage=storage))
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert fake.calls == []
    identity = make_config(storage={**storage, "credentials": "workload-identity"})
    assert backend_for(env, tmp_path, identity).credentials == {}


@pytest.mark.parametrize("jobs", [1, 40])
def test_one_list_call_per_cycle_whatever_the_number_of_jobs(fake, backend, jobs):
    ids = [submit(backend, i) for i in range(jobs)]
    fake.reset_calls()
    assert {s.state for s in backend.poll(ids).values()} == {JobState.PENDING}
    for ext in ids[::2]:
        fake.start(ext, NS)
    statuses = backend.poll(ids)
    assert sum(s.state == JobState.RUNNING for s in statuses.values()) == len(ids[::2])
    for ext in ids:
        fake.finish(ext, NS)
    assert {s.state for s in backend.poll(ids).values()} == {JobState.SUCCEEDED}
    # the last list leaves the succeeded Jobs out; every open job left it: one list of the run
    assert fake.calls == [("list", "jobs")] * 4


def test_a_spot_job_lost_with_its_node_reads_as_a_preemption(fake, backend):
    ext = submit(backend, 5, preemptible=True)
    pod = fake.pods_of(ext, NS)[0]
    assert pod["metadata"]["annotations"]["cfw/spot"] == "true"  # copied to the pod
    fake.start(ext, NS)
    fake.fail(ext, NS, POD_STATUS["spot_preempted"])
    status = backend.poll([ext])[ext]
    # a preemption, which cfw resubmits (executor/retry.py), not a failure
    assert status.state == JobState.PREEMPTED and status.reason.startswith("Spot VM preempted")
    on_demand = submit(backend, 6)
    fake.start(on_demand, NS)
    fake.fail(on_demand, NS, POD_STATUS["spot_preempted"])
    status = backend.poll([on_demand])[on_demand]
    assert status.state == JobState.FAILED and status.reason.startswith("its node shut down")


def test_logs_cancel_and_close(fake, backend):
    failed, running, done = submit(backend, 7), submit(backend, 8), submit(backend, 9)
    for ext in (failed, running, done):
        fake.start(ext, NS)
    pod = fake.pods_of(failed, NS)[0]["metadata"]["name"]
    fake.logs[pod] = "".join(f"line {i}\n" for i in range(6000)) + "Error in rule align\n"
    fake.fail(failed, NS, POD_STATUS["exit_code"])
    fake.finish(done, NS)
    statuses = backend.poll([failed, running, done])
    assert statuses[failed].state == JobState.FAILED and statuses[failed].exit_code == 1
    text = backend.logs(failed)
    assert text.endswith("Error in rule align\n")
    assert len(text.splitlines()) == kube_backend.LOG_LINES
    backend.cancel([running])
    assert fake.get("jobs", NS, running)["metadata"]["finalizers"] == ["foregroundDeletion"]
    fake.collect_garbage()
    backend.cancel([running])  # gone: success
    assert backend.poll([running])[running].state == JobState.CANCELLED
    backend.close()
    assert fake.get("secrets", NS, f"cfw-{RUN}-env") is None
    assert fake.get("jobs", NS, done) is not None  # finished Jobs stay for their TTL


def test_the_cluster_over_tls_with_the_kubeconfig_ca(tmp_path):
    kube = FakeKube(token="eks-token", tls=True)
    other = FakeKube(tls=True)
    try:
        good = write_kubeconfig(tmp_path / "good", kube.url, kube.token, ca_pem=kube.ca_pem)
        backend = backend_for({"KUBECONFIG": str(good), **S3_ENV}, tmp_path)
        assert backend.poll(["cfw-r1-1-x-a1"])["cfw-r1-1-x-a1"].state == JobState.FAILED
        # the Jobs that did not succeed, then (the job is not among them) the run's Jobs
        assert kube.calls == [("list", "jobs")] * 2
        wrong = write_kubeconfig(tmp_path / "wrong", kube.url, kube.token, ca_pem=other.ca_pem)
        stranger = backend_for({"KUBECONFIG": str(wrong), **S3_ENV}, tmp_path)
        with pytest.raises(WorkFailed, match="TLS certificate does not verify"):
            stranger.poll(["cfw-r1-1-x-a1"])
    finally:
        kube.close()
        other.close()


# -- who may do what: access reviews --------------------------------------------------------
def connect(environ, config=None):
    return client.connect(config or make_config(), environ)


def test_an_administrator_may_do_everything(fake, environ):
    fake._store("namespaces", "", {"kind": "Namespace", "metadata": {"name": NS}})
    fake._store("serviceaccounts", NS, {"kind": "ServiceAccount", "metadata": {"name": "default"}})
    for create in (True, False):
        cloud.check_access(connect(environ), make_config(create_namespace=create))
    assert fake.count("create", "selfsubjectaccessreviews") > 10


def test_missing_permissions_are_named(fake, environ):
    fake.user = "alice"
    rules = [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "update"]},
    ]
    fake.bind(NS, rules)
    config = make_config(create_namespace=False)
    with pytest.raises(UserError) as caught:
        cloud.check_access(connect(environ), config)
    assert caught.value.message == (
        f"you may not run jobs in namespace {NS}: missing watch jobs (batch), delete jobs "
        "(batch), delete secrets, create configmaps, get configmaps, list configmaps, "
        "update configmaps, delete configmaps, list secrets"
    )
    assert "modules/kubernetes-namespace" in caught.value.hint
    fake.bind(NS, role_rules(cloud.RUN_RULES), name="cfw-runner")  # what the module grants
    with pytest.raises(UserError, match=f"Namespace {NS} does not exist"):
        cloud.check_access(connect(environ), config)  # she may read it: it is not there
    fake._store("namespaces", "", {"kind": "Namespace", "metadata": {"name": NS}})
    with pytest.raises(UserError, match=f"ServiceAccount default does not exist in namespace {NS}"):
        cloud.check_access(connect(environ), config)
    fake._store("serviceaccounts", NS, {"kind": "ServiceAccount", "metadata": {"name": "default"}})
    cloud.check_access(connect(environ), config)
    fake.enforce_rbac = True  # she may not read namespaces: the check goes on without it
    cloud.check_access(connect(environ), config)


def test_creating_the_namespace_needs_cluster_rights(fake, environ):
    fake.user = "alice"
    fake.groups = ["system:authenticated", "lab"]
    fake.bind(NS, role_rules(cloud.RUN_RULES))
    with pytest.raises(UserError) as caught:
        cloud.check_access(connect(environ), make_config(quota={"cpu": 8}))
    message = caught.value.message
    assert message.startswith(f"you may not create namespace {NS} and what cfw puts in it")
    assert message.endswith(
        "missing create namespaces, create serviceaccounts, create roles "
        "(rbac.authorization.k8s.io), create rolebindings (rbac.authorization.k8s.io), "
        "create resourcequotas"
    )
    assert "create_namespace: false" in caught.value.hint
    fake._store(
        "clusterroles",
        "",
        {
            "kind": "ClusterRole",
            "metadata": {"name": "admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        },
    )
    fake._store(
        "clusterrolebindings",
        "",
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "lab-admins"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "admin",
            },
            "subjects": [{"kind": "Group", "name": "lab"}],
        },
    )
    kube = connect(environ)
    cloud.check_access(kube, make_config(quota={"cpu": 8}))
    from cfw.backends._kube.rbac import Permission

    assert kube.may(Permission("create", "", "namespaces"), "") == (
        True,
        'RBAC: allowed by ClusterRoleBinding "lab-admins" of ClusterRole "admin" to User "alice"',
    )


def test_a_runner_with_only_the_runner_role_runs_and_cleans_up(fake, environ, tmp_path):
    """RBAC enforced: everything a run and `down` do is within the module's Role."""
    fake.user = "alice"
    fake.bind(NS, role_rules(cloud.RUN_RULES), name="cfw-runner")
    fake.enforce_rbac = True
    backend = backend_for(environ, tmp_path)
    ids = [submit(backend, i) for i in range(3)]
    fake.start(ids[0], NS)
    fake.logs[fake.pods_of(ids[0], NS)[0]["metadata"]["name"]] = "Error in rule align\n"
    fake.fail(ids[0], NS, POD_STATUS["exit_code"])
    assert "exit code 1" in backend.poll(ids)[ids[0]].reason
    assert backend.logs(ids[0]) == "Error in rule align\n"  # a refused log would say so
    backend.cancel(ids[1:])
    backend.close()
    kube = connect(environ)
    details = cloud.status_details(kube, make_config(), {"namespace": NS, "cfw_id": ENV_ID})
    assert details["nodes"] == "unknown (no permission to list nodes)"
    fake.collect_garbage()
    cloud.cleanup(kube, NS, ENV_ID, sleep=lambda _: fake.collect_garbage())
    assert cloud.leftovers(kube, make_config(create_namespace=False), ENV_ID, NS) == []
    fake.bind(NS, [], name="cfw-runner")  # the Role emptied: a clear refusal
    with pytest.raises(WorkFailed, match=r"refused to list Jobs in snakemake: 403.*cannot list"):
        backend_for(environ, tmp_path).poll(["x"])


# -- down: cleanup by label, verification ---------------------------------------------------
def test_down_deletes_only_this_environments_jobs_and_secrets(fake, environ, tmp_path):
    mine = backend_for(environ, tmp_path)
    crashed = [submit(mine, i) for i in range(3)]  # a run that died without closing
    other_ctx = context(
        "kubernetes", make_config(), name="lab", env="lab-ffffff", run_id="other", outputs=None
    )
    other = KubernetesBackend(other_ctx, environ=environ)
    theirs = submit(other, 1)
    kube = connect(environ)
    config = make_config(create_namespace=False)
    left = cloud.leftovers(kube, config, ENV_ID, NS)
    assert sorted(left) == sorted(
        [f"Job {NS}/{e}" for e in crashed]
        + [f"Pod {NS}/{p['metadata']['name']}" for e in crashed for p in fake.pods_of(e, NS)]
        + [f"Secret {NS}/cfw-{RUN}-env"]
    )
    collector = threading.Timer(0.5, fake.collect_garbage)  # the GC finishes foreground deletes
    collector.start()
    KIND.before_destroy(config, {"namespace": NS, "cfw_id": ENV_ID}, environ)
    collector.join()
    assert cloud.leftovers(kube, config, ENV_ID, NS) == []
    assert fake.get("jobs", NS, theirs) is not None  # another environment's, in a shared namespace
    assert fake.get("secrets", NS, "cfw-other-env") is not None
    assert KIND.leftovers(config, _ident(), {"namespace": NS}, environ) == []


def _ident():
    from support.builders import identity

    return identity("lab", "kubernetes", ENV_ID)


def test_down_waits_for_deleted_jobs_then_says_they_stay(fake, environ, tmp_path):
    submit(backend_for(environ, tmp_path), 1)
    kube = connect(environ)
    naps = []
    with pytest.raises(WorkFailed, match=r"still there after 0\.05 s"):
        cloud.cleanup(kube, NS, ENV_ID, timeout=0.05, sleep=naps.append)
    assert naps and set(naps) == {cloud.CLEANUP_POLL_S}


def test_a_created_namespace_still_there_is_left_over(fake, environ):
    config = make_config()
    labels = {"cfw-id": ENV_ID}
    fake._store(
        "namespaces",
        "",
        {
            "kind": "Namespace",
            "metadata": {"name": NS, "labels": labels},
            "status": {"phase": "Terminating"},
        },
    )
    assert cloud.leftovers(connect(environ), config, ENV_ID, NS) == [
        f"namespace {NS} (Terminating)"
    ]
    fake.objects[("namespaces", "", NS)]["metadata"]["labels"] = {"cfw-id": "someone-else"}
    assert cloud.leftovers(connect(environ), config, ENV_ID, NS) == []
    unreachable = {"KUBECONFIG": environ["KUBECONFIG"] + "-gone"}
    [why] = KIND.leftovers(config, _ident(), {"namespace": NS}, unreachable)
    assert why.startswith(f"namespace {NS} (could not check what is left: no kubeconfig found")


# -- cfw status -----------------------------------------------------------------------------
def test_status_details_count_the_nodes_each_pool_selects_and_the_jobs(fake, environ, tmp_path):
    nodes = {
        "n1": {"node.kubernetes.io/instance-type": "m5.2xlarge"},
        "n2": {
            "node.kubernetes.io/instance-type": "m5.2xlarge",
            "eks.amazonaws.com/capacityType": "SPOT",
        },
        "n3": {"eks.amazonaws.com/capacityType": "SPOT"},
        "g1": {"nvidia.com/gpu.product": "Tesla-T4"},
        "cordoned": {"node.kubernetes.io/instance-type": "m5.2xlarge"},
    }
    for name, labels in nodes.items():
        spec = {"unschedulable": True} if name == "cordoned" else {}
        fake._store(
            "nodes",
            "",
            {"kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec},
        )
    backend = backend_for(environ, tmp_path)
    ids = [submit(backend, i) for i in range(3)]
    fake.start(ids[0], NS)
    fake.finish(ids[1], NS)
    outputs = {"namespace": NS, "cfw_id": ENV_ID}
    details = cloud.status_details(connect(environ), make_config(), outputs)
    assert details == {
        "nodes": {"general": 2, "spot": 2, "gpu": 1},
        "jobs": {"running": 1, "succeeded": 1, "pending": 1},
    }
    anywhere = cloud.status_details(connect(environ), make_config(node_pools=[]), outputs)
    assert anywhere["nodes"] == {"any": 4}
    fake.forbidden = {"nodes"}
    assert cloud.status_details(connect(environ), make_config(), outputs)["nodes"] == (
        "unknown (no permission to list nodes)"
    )

"""`cfw up gke` stops before anything is created when the project, the credentials or a
required API is missing (the CLI with no credentials present; a fake at the HTTP boundary
of google-auth where Google must answer); cluster credentials through google-cloud-container
(REST transport against a fake GKE API); what `down` checks is left; and the Kubernetes
objects made after apply."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import google.auth
import pytest
import requests
from google.oauth2.credentials import Credentials
from requests.adapters import BaseAdapter

from cfw.backends._kube import client as kube_client
from cfw.backends.gke import cloud
from cfw.backends.gke.backend import GkeBackend
from cfw.backends.gke.config import GkeConfig
from cfw.backends.registry import get_kind, resolve
from cfw.core.errors import UserError, WorkFailed
from cfw.orchestration.lifecycle import Lifecycle
from support.builders import context, identity
from support.fake_kube import FakeKube

NO_GOOGLE = {
    "GOOGLE_CLOUD_PROJECT": "",
    "CLOUDSDK_CORE_PROJECT": "",
    "GCLOUD_PROJECT": "",
    "GOOGLE_APPLICATION_CREDENTIALS": "",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**NO_GOOGLE, "HOME": str(home), "CLOUDSDK_CONFIG": str(home / "gcloud")}


def assert_nothing_created(project: Path) -> None:
    assert not (project / ".cfw").exists(), "no state, lock or rendered module"


def test_up_without_a_project_is_one_line_and_creates_nothing(cfw, tmp_path):
    result = cfw(["up", "gke", "--yes"], cwd=tmp_path, env=no_credentials_env(tmp_path))
    assert result.code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output and line.startswith("error:")
    assert "no GCP project is set for environment gke" in line
    assert "--project" in line and "GOOGLE_CLOUD_PROJECT" in line
    assert_nothing_created(tmp_path)
    assert not (tmp_path / "environments").exists(), "a config that failed preflight is not kept"


def test_up_without_credentials_is_one_line_and_creates_nothing(cfw, tmp_path):
    result = cfw(
        ["up", "gke", "--project", "my-project", "--yes"],
        cwd=tmp_path,
        env=no_credentials_env(tmp_path),
    )
    assert result.code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output and line.startswith("error:")
    assert "no Google Cloud credentials found" in line
    assert "gcloud auth application-default login" in line
    assert "GOOGLE_APPLICATION_CREDENTIALS" in line
    assert_nothing_created(tmp_path)
    assert not (tmp_path / "environments").exists()


def test_a_bad_project_id_is_a_config_error(cfw, tmp_path):
    result = cfw(
        ["up", "gke", "--project", "My_Project", "--yes"],
        cwd=tmp_path,
        env=no_credentials_env(tmp_path),
    )
    assert result.code == 2 and "field 'project'" in result.stderr
    assert_nothing_created(tmp_path)


# -- Google at the HTTP boundary ------------------------------------------------------------
class FakeGoogle(BaseAdapter):
    """Answers Google REST calls as the services do; records every request."""

    def __init__(self, routes):
        super().__init__()
        self.routes = routes  # (method, url prefix) -> (status, json body)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        url = request.url.split("?")[0]
        status, body = next(
            (
                v
                for (m, prefix), v in self.routes.items()
                if m == request.method and url.startswith(prefix)
            ),
            (404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}),
        )
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body(request) if callable(body) else body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@pytest.fixture
def fake_google(monkeypatch):
    """google.auth.default returns user credentials (as after `gcloud auth application-
    default login`, without a quota project); HTTP goes to a FakeGoogle adapter."""
    routes: dict = {}
    adapter = FakeGoogle(routes)
    monkeypatch.setattr(
        google.auth, "default", lambda scopes=None, **kw: (Credentials(token="ya29.test"), None)
    )
    real_session = cloud.session

    def session(creds):
        http = real_session(creds)
        http.mount("https://", adapter)
        return http

    monkeypatch.setattr(cloud, "session", session)
    return adapter


def service_usage(states: dict[str, str]):
    def answer(request):
        names = parse_qs(urlparse(request.url).query)["names"]
        return {
            "services": [
                {
                    "name": f"projects/123456789/services/{n.rsplit('/', 1)[1]}",
                    "config": {"name": n.rsplit("/", 1)[1], "title": "x"},
                    "state": states.get(n.rsplit("/", 1)[1], "ENABLED"),
                    "parent": "projects/123456789",
                }
                for n in names
            ]
        }

    return answer


BATCH_GET = ("GET", "https://serviceusage.googleapis.com/v1/projects/my-project/services:batchGet")


def up_in(tmp_path: Path):
    resolved = resolve(tmp_path, "gke", overrides=["project=my-project"], environ={})
    return Lifecycle(tmp_path, environ={}).up(resolved)


def test_a_disabled_api_stops_up_before_anything(fake_google, tmp_path):
    fake_google.routes[BATCH_GET] = (
        200,
        service_usage(
            {"container.googleapis.com": "DISABLED", "iamcredentials.googleapis.com": "DISABLED"}
        ),
    )
    with pytest.raises(UserError) as caught:
        up_in(tmp_path)
    message = str(caught.value)
    assert "2 required API(s) disabled" in message
    assert "container.googleapis.com (Kubernetes Engine API)" in message
    assert "iamcredentials.googleapis.com" in message and "compute.googleapis.com" not in message
    assert "apiid=container.googleapis.com,iamcredentials.googleapis.com" in message
    assert_nothing_created(tmp_path)
    request = fake_google.requests[0]
    assert request.headers["Authorization"] == "Bearer ya29.test"
    assert request.headers["x-goog-user-project"] == "my-project"
    assert len(parse_qs(urlparse(request.url).query)["names"]) == len(cloud.REQUIRED_APIS)


@pytest.mark.parametrize(
    ("status", "body", "fragments"),
    [
        (
            403,
            {
                "error": {
                    "code": 403,
                    "status": "PERMISSION_DENIED",
                    "message": "Service Usage API "
                    "has not been used in project 123456789 before or it is disabled.",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "SERVICE_DISABLED",
                            "domain": "googleapis.com",
                            "metadata": {"service": "serviceusage.googleapis.com"},
                        }
                    ],
                }
            },
            ["Service Usage API is disabled", "apiid=serviceusage.googleapis.com"],
        ),
        (
            403,
            {
                "error": {
                    "code": 403,
                    "status": "PERMISSION_DENIED",
                    "message": "Permission denied "
                    "to list services for consumer container [projects/my-project]",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "AUTH_PERMISSION_DENIED",
                            "domain": "serviceusage.googleapis.com",
                        }
                    ],
                }
            },
            ["project 'my-project' cannot be used", "Permission denied", "check the project id"],
        ),
    ],
)
def test_service_usage_errors_are_user_errors(fake_google, tmp_path, status, body, fragments):
    fake_google.routes[BATCH_GET] = (status, body)
    with pytest.raises(UserError) as caught:
        up_in(tmp_path)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert_nothing_created(tmp_path)


def test_preflight_passes_when_every_api_is_enabled(fake_google):
    fake_google.routes[BATCH_GET] = (200, service_usage({}))
    get_kind("gke").preflight(GkeConfig(project="my-project"), {})
    assert len(fake_google.requests) == 1


def test_leftovers_lists_what_still_carries_the_id(fake_google):
    env_id = "gke-0a1b2c"
    fake_google.routes.update(
        {
            (
                "GET",
                "https://container.googleapis.com/v1/projects/my-project/locations/-/clusters",
            ): (
                200,
                {
                    "clusters": [
                        {"name": "cfw-gke-0a1b2c", "resourceLabels": {"cfw-id": env_id}},
                        {"name": "someone-else", "resourceLabels": {"cfw-id": "x"}},
                    ]
                },
            ),
            (
                "GET",
                "https://compute.googleapis.com/compute/v1/projects/my-project/aggregated/instances",
            ): (
                200,
                {
                    "items": {
                        "zones/europe-west4-a": {
                            "instances": [{"name": "gke-cfw-gke-0a1b2c-od-e2-standard-4-5d1c-x2"}]
                        },
                        "zones/europe-west4-b": {"warning": {"code": "NO_RESULTS_ON_PAGE"}},
                    }
                },
            ),
            (
                "GET",
                "https://compute.googleapis.com/compute/v1/projects/my-project/aggregated/disks",
            ): (
                200,
                {
                    "items": {
                        "zones/europe-west4-a": {
                            "disks": [{"name": "pvc-3f1c0e2a-9b7d-4d0e-a1f2-3c4d5e6f7a8b"}]
                        },
                        "zones/europe-west4-c": {"warning": {"code": "NO_RESULTS_ON_PAGE"}},
                    }
                },
            ),
            ("GET", "https://storage.googleapis.com/storage/v1/b"): (
                200,
                {"items": [{"name": "cfw-gke-0a1b2c-my-project", "labels": {"cfw-id": env_id}}]},
            ),
            (  # the cloud guard's function (modules/gcp-guard), by its name
                "GET",
                f"https://cloudfunctions.googleapis.com/v2/projects/my-project/locations/"
                f"{GkeConfig(project='my-project').region}/functions/cfw-gke-0a1b2c-guard",
            ): (200, {"name": "cfw-gke-0a1b2c-guard"}),
        }
    )
    ident = identity("gke", env=env_id)
    left = get_kind("gke").leftovers(GkeConfig(project="my-project"), ident, {}, {})
    assert left == [
        "cluster cfw-gke-0a1b2c",
        "instance gke-cfw-gke-0a1b2c-od-e2-standard-4-5d1c-x2",
        "disk pvc-3f1c0e2a-9b7d-4d0e-a1f2-3c4d5e6f7a8b",
        "bucket cfw-gke-0a1b2c-my-project",
        "guard function cfw-gke-0a1b2c-guard",
    ]
    for kind in ("instances", "disks"):
        listed = next(r for r in fake_google.requests if f"aggregated/{kind}" in r.url)
        assert parse_qs(urlparse(listed.url).query)["filter"] == [f"labels.cfw-id={env_id}"]
    urls = [r.url.split("?")[0] for r in fake_google.requests]
    assert any(u.endswith("/global/networks/cfw-gke-0a1b2c") for u in urls)
    for account in ("cfwj-0a1b2c-gke", "cfwg-0a1b2c-gke", "cfws-0a1b2c-gke"):
        assert any(
            f"serviceAccounts/{account}@my-project.iam.gserviceaccount.com" in u for u in urls
        )
    assert any(u.endswith("/jobs/cfw-gke-0a1b2c-guard") for u in urls)  # its schedule
    fake_google.routes.clear()  # everything answers 404 now: nothing is left
    assert get_kind("gke").leftovers(GkeConfig(project="my-project"), ident, {}, {}) == []


# -- the GKE API (google-cloud-container, REST transport) -----------------------------------
@pytest.fixture
def fake_gke(monkeypatch):
    ca = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
    seen: list[str] = []
    cluster = {"endpoint": "34.90.1.2", "ca": ca}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.path)
            path = urlparse(self.path).path
            if path == "/v1/projects/my-project/locations/europe-west4/clusters/cfw-gke-0a1b2c":
                code, body = (
                    200,
                    {
                        "name": "cfw-gke-0a1b2c",
                        "endpoint": cluster["endpoint"],
                        "status": 2,
                        "masterAuth": {
                            "clusterCaCertificate": base64.b64encode(cluster["ca"]).decode()
                        },
                    },
                )
            else:
                code, body = (
                    404,
                    {
                        "error": {
                            "code": 404,
                            "status": "NOT_FOUND",
                            "message": "Not found: cluster",
                        }
                    },
                )
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from google.cloud import container_v1

    monkeypatch.setattr(
        cloud,
        "cluster_manager",
        lambda creds: container_v1.ClusterManagerClient(
            credentials=creds,
            transport="rest",
            client_options={"api_endpoint": f"http://127.0.0.1:{server.server_address[1]}"},
        ),
    )
    yield ca, seen, cluster
    server.shutdown()
    server.server_close()


def test_cluster_access_from_the_gke_api(fake_gke):
    ca, seen, _ = fake_gke
    assert not seen
    creds = Credentials(token="ya29.test")
    access = cloud.cluster_access("my-project", "europe-west4", "cfw-gke-0a1b2c", creds)
    assert seen[0].startswith("/v1/projects/my-project/locations/europe-west4/clusters/")
    assert access.endpoint == "https://34.90.1.2"
    assert access.ca_pem == ca
    assert access.token() == "ya29.test"
    with pytest.raises(UserError, match="cluster cfw-gke-other does not exist"):
        cloud.cluster_access("my-project", "europe-west4", "cfw-gke-other", creds)


def test_connect_writes_the_ca_privately(fake_gke, monkeypatch):
    monkeypatch.setattr(
        google.auth, "default", lambda scopes=None, **kw: (Credentials(token="ya29.test"), None)
    )
    outputs = {
        "project": "my-project",
        "cluster_name": "cfw-gke-0a1b2c",
        "cluster_location": "europe-west4",
    }
    kube = cloud.connect(GkeConfig(project="my-project"), outputs)
    config = kube.api.configuration
    assert config.host == "https://34.90.1.2"
    ca_file = Path(config.ssl_ca_cert)
    assert ca_file.read_bytes() == fake_gke[0] and oct(ca_file.stat().st_mode)[-3:] == "600"
    assert config.auth_settings()["BearerToken"]["value"] == "Bearer ya29.test"


def test_after_apply_creates_the_runner_objects(monkeypatch):
    fake = FakeKube()
    try:
        monkeypatch.setattr(
            cloud,
            "connect",
            lambda config, outputs: kube_client.connect(fake.url, None, lambda: fake.token),
        )
        config = GkeConfig(project="my-project", runners=["user:alice@example.com"])
        email = "cfwj-0a1b2c-gke@my-project.iam.gserviceaccount.com"
        outputs = {
            "namespace": "cfw-jobs",
            "service_account": "cfw-jobs",
            "jobs_service_account_email": email,
            "cfw_labels": {"cfw-env": "gke", "cfw-id": "gke-0a1b2c", "team": "x"},
        }
        for _ in range(2):  # a repeated `up` repairs, it does not fail
            get_kind("gke").after_apply(config, outputs, {})
        ksa = fake.get("serviceaccounts", "cfw-jobs", "cfw-jobs")
        assert ksa["metadata"]["annotations"] == {
            "iam.gke.io/gcp-service-account": outputs["jobs_service_account_email"]
        }
        assert ksa["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "cfw",
            "cfw-env": "gke",
            "cfw-id": "gke-0a1b2c",
        }
        import kubernetes_validate

        for resource in ("namespaces", "serviceaccounts", "roles", "rolebindings"):
            for obj in fake.all(resource):
                manifest = {k: v for k, v in obj.items()}
                manifest["metadata"] = {
                    k: v
                    for k, v in obj["metadata"].items()
                    if k in ("name", "namespace", "labels", "annotations")
                }
                kubernetes_validate.validate(manifest, "1.30", strict=True)
    finally:
        fake.close()


def test_status_details_count_nodes_per_pool_and_jobs(monkeypatch):
    fake = FakeKube()
    try:
        kube = kube_client.connect(fake.url, None, lambda: fake.token)
        monkeypatch.setattr(cloud, "connect", lambda config, outputs: kube)
        for name, pool in (
            ("n1", "od-e2-standard-4"),
            ("n2", "od-e2-standard-4"),
            ("n3", "spot-e2-highmem-8"),
            ("s1", "system"),
            ("x", None),
        ):
            labels = {"cfw-pool": pool} if pool else {}
            fake._store(
                "nodes",
                "",
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}},
            )
        config = GkeConfig(project="my-project")
        outputs = {
            "namespace": "cfw-jobs",
            "node_pools": {
                "od-e2-standard-4": "e2-standard-4",
                "spot-e2-highmem-8": "e2-highmem-8",
                "od-e2-highmem-8": "e2-highmem-8",
            },
        }
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "cfw-r-1-a-a1", "labels": {"app.kubernetes.io/managed-by": "cfw"}},
            "spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": []}}},
        }
        kube.create_job("cfw-jobs", job)
        details = get_kind("gke").status_details(config, outputs)
        assert details == {
            "nodes": {"od-e2-standard-4": 2, "spot-e2-highmem-8": 1, "od-e2-highmem-8": 0},
            "jobs": {"pending": 1},
        }
    finally:
        fake.close()


def test_status_details_without_node_access_still_count_jobs(monkeypatch):
    """The runner Role is namespaced: listing nodes is a 403 for a runner, not an error."""
    fake = FakeKube()
    try:
        fake.forbidden = {"nodes"}
        kube = kube_client.connect(fake.url, None, lambda: fake.token)
        monkeypatch.setattr(cloud, "connect", lambda config, outputs: kube)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "cfw-r-1-a-a1", "labels": {"app.kubernetes.io/managed-by": "cfw"}},
            "spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": []}}},
        }
        kube.create_job("cfw-jobs", job)
        outputs = {"namespace": "cfw-jobs", "node_pools": {"od-e2-standard-4": "e2-standard-4"}}
        details = get_kind("gke").status_details(GkeConfig(project="my-project"), outputs)
        assert details == {
            "nodes": "unknown (no permission to list nodes)",
            "jobs": {"pending": 1},
        }
        fake.forbidden = {"jobs"}  # other refusals still say what was refused
        with pytest.raises(WorkFailed, match="refused to list Jobs in cfw-jobs: 403"):
            get_kind("gke").status_details(GkeConfig(project="my-project"), outputs)
    finally:
        fake.close()


def test_a_failed_after_apply_leaves_an_environment_to_retry_or_destroy(tmp_path, monkeypatch):
    """The lifecycle hook gke uses, on the local kind (real Terraform, no provider needed)."""
    from cfw.backends.local.kind import LocalKind
    from cfw.core.errors import WorkFailed
    from cfw.core.state import EnvState

    def broken(self, config, outputs, environ):
        raise WorkFailed("the API server did not answer")

    monkeypatch.setattr(LocalKind, "after_apply", broken)
    resolved = resolve(tmp_path, "local", overrides=[f"sandbox_root={tmp_path / 'sb'}"], environ={})
    lifecycle = Lifecycle(tmp_path, environ={})
    with pytest.raises(WorkFailed) as caught:
        lifecycle.up(resolved)
    assert "setting it up failed: the API server did not answer" in str(caught.value)
    assert "cfw up local" in str(caught.value)
    meta = EnvState(tmp_path, "local").meta()
    assert meta.phase == "failed" and meta.resources >= 1
    assert lifecycle.down("local")


def test_the_runner_reaches_the_cluster_over_tls_with_the_gke_api_credentials(
    fake_gke, monkeypatch, tmp_path
):
    """GKE API -> endpoint + CA -> kubernetes client verifying TLS with that CA -> Jobs."""
    from cfw.backends.base import JobState
    from cfw.core.errors import WorkFailed

    kube = FakeKube(token="ya29.test", tls=True)
    try:
        fake_gke[2].update(endpoint=kube.endpoint, ca=kube.ca_pem)
        monkeypatch.setattr(
            google.auth, "default", lambda scopes=None, **kw: (Credentials(token="ya29.test"), None)
        )
        config = GkeConfig(project="my-project", name="gke")
        outputs = {
            "project": "my-project",
            "cluster_name": "cfw-gke-0a1b2c",
            "cluster_location": "europe-west4",
            "namespace": "cfw-jobs",
        }
        ctx = context("gke", config, outputs=outputs, state_dir=tmp_path, run_id="r1")
        backend = GkeBackend(ctx)  # connects as a run does
        assert backend.poll(["cfw-r1-1-x-a1"])["cfw-r1-1-x-a1"].state == JobState.FAILED
        # the Jobs that did not succeed, then (the job is not among them) the run's Jobs
        assert kube.calls == [("list", "jobs")] * 2
        fake_gke[2].update(ca=FakeKube(tls=True).ca_pem)  # another cluster's CA: refused
        with pytest.raises(WorkFailed, match=r"TLS certificate does not verify.*CERTIFICATE_VERI"):
            GkeBackend(ctx).poll(["cfw-r1-1-x-a1"])
    finally:
        kube.close()

"""GKE's control plane: Application Default Credentials, the project's APIs, the cluster's
endpoint and CA (google-cloud-container; no gcloud needed) and a Kubernetes client made from
them, the GCP side of the objects jobs need in the cluster, and what is left after destroy.

The kind's hooks import this module lazily; it imports google-auth and google-cloud-container
(``pip install 'cfw[gke]'``) with :func:`cfw.backends.sdk.require` where it calls them.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfw.backends.gke.config import GkeConfig
from cfw.backends.sdk import require
from cfw.core.errors import UserError, WorkFailed

if TYPE_CHECKING:
    from cfw.backends._kube.client import Kube

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
REQUIRED_APIS = {
    "container.googleapis.com": "Kubernetes Engine API",
    "compute.googleapis.com": "Compute Engine API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "storage.googleapis.com": "Cloud Storage API",
}
SERVICE_USAGE = "https://serviceusage.googleapis.com/v1"
ADC_FIX = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
    "to a service account key file"
)


def credentials(project: str) -> Any:
    """Application Default Credentials, billed to ``project`` where they name no quota project."""
    google_auth = require("google.auth", "gke")
    auth_errors = require("google.auth.exceptions", "gke")
    try:
        creds, _ = google_auth.default(scopes=SCOPES)
    except auth_errors.DefaultCredentialsError as exc:
        raise UserError(
            "no Google Cloud credentials found (Application Default Credentials)", ADC_FIX
        ) from exc
    if getattr(creds, "quota_project_id", None) is None and hasattr(creds, "with_quota_project"):
        creds = creds.with_quota_project(project)
    return creds


def session(creds: Any) -> Any:
    """An HTTP session that signs requests with ``creds`` (tests put a fake transport here)."""
    return require("google.auth.transport.requests", "gke").AuthorizedSession(creds)


def _get(http: Any, url: str, what: str, params: Any = None) -> Any:
    auth_errors = require("google.auth.exceptions", "gke")
    try:
        return http.get(url, params=params, timeout=30)
    except auth_errors.RefreshError as exc:
        raise UserError(
            f"the Google Cloud credentials could not be refreshed ({exc})", ADC_FIX
        ) from exc
    except (auth_errors.TransportError, OSError) as exc:
        raise UserError(
            f"cannot reach Google Cloud to {what} ({type(exc).__name__})",
            "check the network connection and try again",
        ) from exc


def _error(response: Any) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", response.text[:200]
    reasons = [d.get("reason", "") for d in error.get("details") or [] if isinstance(d, dict)]
    return (reasons[0] if reasons else error.get("status", "")), error.get("message", "")


def check_project(project: str, creds: Any | None = None) -> None:
    """Credentials work and every API the module uses is enabled; else one clear UserError."""
    creds = creds or credentials(project)
    http = session(creds)
    names = [f"projects/{project}/services/{api}" for api in REQUIRED_APIS]
    response = _get(
        http,
        f"{SERVICE_USAGE}/projects/{project}/services:batchGet",
        "check the project's APIs",
        params=[("names", n) for n in names],
    )
    if response.status_code != 200:
        reason, message = _error(response)
        if reason == "SERVICE_DISABLED":
            raise UserError(
                f"the Service Usage API is disabled in project {project}, so cfw cannot check "
                "the other APIs",
                f"enable it: {_console(project, 'serviceusage.googleapis.com')}",
            )
        if response.status_code in (401, 403, 404):
            raise UserError(
                f"project {project!r} cannot be used with these credentials: {message}",
                "check the project id (--project, project: or GOOGLE_CLOUD_PROJECT) and that "
                "your account may use it (roles/owner or roles/editor)",
            )
        raise WorkFailed(
            f"checking the APIs of project {project} failed: {response.status_code} {message}"
        )
    states = {
        s.get("config", {}).get("name") or s.get("name", "").rsplit("/", 1)[-1]: s.get("state")
        for s in response.json().get("services") or []
    }
    disabled = [api for api in REQUIRED_APIS if states.get(api) != "ENABLED"]
    if disabled:
        listed = ", ".join(f"{api} ({REQUIRED_APIS[api]})" for api in disabled)
        raise UserError(
            f"project {project} has {len(disabled)} required API(s) disabled: {listed}",
            f"enable them: {_console(project, ','.join(disabled))} (or `gcloud services enable "
            f"{' '.join(disabled)} --project {project}`)",
        )


def _console(project: str, apis: str) -> str:
    return f"https://console.cloud.google.com/flows/enableapi?apiid={apis}&project={project}"


# -- the cluster ---------------------------------------------------------------------------
@dataclass
class ClusterAccess:
    endpoint: str  # https://IP
    ca_pem: bytes
    token: Callable[[], str]


def cluster_manager(creds: Any) -> Any:
    """The google-cloud-container client (tests swap in one pointed at a fake)."""
    container_v1 = require("google.cloud.container_v1", "gke")
    return container_v1.ClusterManagerClient(credentials=creds)


def cluster_access(
    project: str, location: str, cluster: str, creds: Any | None = None
) -> ClusterAccess:
    """Endpoint, CA and a bearer-token source for the cluster: what kubectl's gcloud plugin
    would give, from the GKE API and Application Default Credentials."""
    gexc = require("google.api_core.exceptions", "gke")
    request = require("google.auth.transport.requests", "gke").Request
    creds = creds or credentials(project)
    name = f"projects/{project}/locations/{location}/clusters/{cluster}"
    try:
        found = cluster_manager(creds).get_cluster(name=name)
    except gexc.NotFound as exc:
        raise UserError(
            f"cluster {cluster} does not exist in {project}/{location}",
            "bring the environment up with `cfw up` (or down with `cfw down`)",
        ) from exc
    except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
        raise UserError(
            f"no access to cluster {cluster}: {exc.message}",
            "ask for roles/container.clusterViewer on the project",
        ) from exc
    except gexc.GoogleAPIError as exc:
        raise WorkFailed(f"could not read cluster {cluster}: {exc}") from exc

    def token() -> str:
        if not creds.valid:
            creds.refresh(request())
        return creds.token

    ca = base64.b64decode(found.master_auth.cluster_ca_certificate)
    return ClusterAccess(endpoint=f"https://{found.endpoint}", ca_pem=ca, token=token)


def connect(config: GkeConfig, outputs: Mapping[str, Any]) -> Kube:
    """A Kubernetes client for the environment's cluster, credentials from the GKE API."""
    from cfw.backends._kube import client

    project = outputs.get("project") or config.project
    cluster = outputs.get("cluster_name")
    if not project or not cluster:
        raise UserError("the environment's outputs name no cluster", "run `cfw up` for it again")
    location = outputs.get("cluster_location") or config.location
    access = cluster_access(project, location, cluster)
    workdir = tempfile.mkdtemp(prefix="cfw-gke-")
    atexit.register(shutil.rmtree, workdir, True)
    ca_file = Path(workdir) / "cluster-ca.pem"
    fd = os.open(ca_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(access.ca_pem)
    return client.connect(access.endpoint, ca_file, access.token)


# -- what jobs need in the cluster (after `terraform apply`) -------------------------------
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"
SUBJECT_KINDS = {"user": "User", "group": "Group", "serviceAccount": "User"}


def runner_subjects(runners: list[str]) -> list[dict[str, str]]:
    """RoleBinding subjects for IAM members (user:, group:, serviceAccount:EMAIL): GKE
    authenticates a Google service account as the User named by its email."""
    subjects = []
    for member in runners:
        prefix, _, email = member.partition(":")
        subjects.append(
            {"apiGroup": "rbac.authorization.k8s.io", "kind": SUBJECT_KINDS[prefix], "name": email}
        )
    return subjects


def create_runner_objects(config: GkeConfig, outputs: Mapping[str, Any]) -> None:
    """Namespace, the jobs' service account bound to their Google service account (Workload
    Identity), the runners' Role and RoleBinding, and the cloud guard's when it is deployed;
    created or updated."""
    labels = {
        "app.kubernetes.io/managed-by": "cfw",
        **{k: v for k, v in (outputs.get("cfw_labels") or {}).items() if k.startswith("cfw-")},
    }
    kube = connect(config, outputs)
    namespace = outputs.get("namespace") or config.namespace
    kube.ensure_runner_objects(
        namespace=namespace,
        service_account=outputs.get("service_account") or config.service_account,
        annotations={WORKLOAD_IDENTITY: outputs["jobs_service_account_email"]},
        subjects=runner_subjects(list(config.runners)),
        labels=labels,
    )
    guard = outputs.get("guard_service_account_email")
    if guard:  # the cloud guard's function (modules/gcp-guard): its own, smaller Role
        kube.ensure_guard_role(namespace, runner_subjects([f"serviceAccount:{guard}"]), labels)


# -- after destroy -------------------------------------------------------------------------
def _aggregated(
    project: str, resource: str, singular: str, label: str
) -> tuple[str, str, Any, Callable[[Any], list[str]]]:
    """A check of a Compute Engine aggregated list (every zone) filtered by a label."""
    return (
        resource,
        f"https://compute.googleapis.com/compute/v1/projects/{project}/aggregated/{resource}",
        {"filter": label},
        lambda body: [
            f"{singular} {item['name']}"
            for scope in (body.get("items") or {}).values()
            for item in scope.get(resource) or []
        ],
    )


def leftovers(
    project: str,
    env_id: str,
    names: Mapping[str, str],
    creds: Any | None = None,
    more: Mapping[str, str] | None = None,
) -> list[str]:
    """What still exists of the environment: labelled resources by their cfw-id label,
    unlabelled ones (network, service accounts) by name; MORE: what -> the URL a GET of
    which finds it (the guard's function, schedule and accounts)."""
    http = session(creds or credentials(project))
    left: list[str] = []
    label = f"labels.cfw-id={env_id}"
    checks: list[tuple[str, str, Any, Callable[[Any], list[str]]]] = [
        (
            "clusters",
            f"https://container.googleapis.com/v1/projects/{project}/locations/-/clusters",
            None,
            lambda body: [
                f"cluster {c['name']}"
                for c in body.get("clusters") or []
                if (c.get("resourceLabels") or {}).get("cfw-id") == env_id
            ],
        ),
        # VMs, and the disks that carry the cluster's labels (one a node left behind
        # while detached keeps costing)
        _aggregated(project, "instances", "instance", label),
        _aggregated(project, "disks", "disk", label),
        (
            "buckets",
            "https://storage.googleapis.com/storage/v1/b",
            {"project": project, "fields": "items(name,labels)"},
            lambda body: [
                f"bucket {b['name']}"
                for b in body.get("items") or []
                if (b.get("labels") or {}).get("cfw-id") == env_id
            ],
        ),
        (
            "network",
            f"https://compute.googleapis.com/compute/v1/projects/{project}/global/networks/{names['network']}",
            None,
            lambda body: [f"network {body['name']}"],
        ),
    ]
    for email in (names.get("jobs_account"), names.get("nodes_account")):
        checks.append(
            (
                "service account",
                f"https://iam.googleapis.com/v1/projects/{project}/serviceAccounts/{email}",
                None,
                lambda body: [f"service account {body['email']}"],
            )
        )
    for what, url in (more or {}).items():
        checks.append((what, url, None, lambda body, what=what: [what]))
    for what, url, params, found in checks:
        response = _get(http, url, f"list {what}", params=params)
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            left.append(f"{what} (could not check: {response.status_code} {_error(response)[1]})")
            continue
        left.extend(found(response.json()))
    return left

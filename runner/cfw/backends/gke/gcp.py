"""Google Cloud calls: Application Default Credentials, the project's APIs, the cluster's
endpoint and CA (google-cloud-container; no gcloud needed), and what is left after destroy.

Imported lazily: google-auth and google-cloud-container come with ``pip install 'cfw[gke]'``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cfw.core.errors import UserError, WorkFailed, missing_sdk

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
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ModuleNotFoundError as exc:
        raise missing_sdk(exc.name or "google-auth", "gke") from exc
    try:
        creds, _ = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        raise UserError(
            "no Google Cloud credentials found (Application Default Credentials)", ADC_FIX
        ) from exc
    if getattr(creds, "quota_project_id", None) is None and hasattr(creds, "with_quota_project"):
        creds = creds.with_quota_project(project)
    return creds


def session(creds: Any) -> Any:
    """An HTTP session that signs requests with ``creds`` (tests put a fake transport here)."""
    from google.auth.transport.requests import AuthorizedSession

    return AuthorizedSession(creds)


def _get(http: Any, url: str, what: str, params: Any = None) -> Any:
    from google.auth.exceptions import RefreshError, TransportError

    try:
        return http.get(url, params=params, timeout=30)
    except RefreshError as exc:
        raise UserError(
            f"the Google Cloud credentials could not be refreshed ({exc})", ADC_FIX
        ) from exc
    except (TransportError, OSError) as exc:
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
    try:
        from google.cloud import container_v1
    except ModuleNotFoundError as exc:
        raise missing_sdk(exc.name or "google-cloud-container", "gke") from exc
    return container_v1.ClusterManagerClient(credentials=creds)


def cluster_access(
    project: str, location: str, cluster: str, creds: Any | None = None
) -> ClusterAccess:
    """Endpoint, CA and a bearer-token source for the cluster: what kubectl's gcloud plugin
    would give, from the GKE API and Application Default Credentials."""
    from google.api_core import exceptions as gexc
    from google.auth.transport.requests import Request

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
            creds.refresh(Request())
        return creds.token

    ca = base64.b64decode(found.master_auth.cluster_ca_certificate)
    return ClusterAccess(endpoint=f"https://{found.endpoint}", ca_pem=ca, token=token)


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
    project: str, env_id: str, names: Mapping[str, str], creds: Any | None = None
) -> list[str]:
    """What still exists of the environment: labelled resources by their cfw-id label,
    unlabelled ones (network, service accounts) by name."""
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
    for what, url, params, found in checks:
        response = _get(http, url, f"list {what}", params=params)
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            left.append(f"{what} (could not check: {response.status_code} {_error(response)[1]})")
            continue
        left.extend(found(response.json()))
    return left

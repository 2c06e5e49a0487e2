"""Kubernetes API calls (the official Python client): jobs, pods, logs, secrets, RBAC and
access reviews, for every kind whose jobs are Kubernetes Jobs.

Everything is read as the API's own JSON (``_preload_content=False``), so status logic sees
what `kubectl get -o json` shows, whatever the client version's model classes look like.
Deleting what is already gone is success. Nothing here is a cloud's: ``connect`` takes an
API server's endpoint, CA and a token source (gke gets them from the GKE API); a
``Kube`` also wraps an ``ApiClient`` made from a kubeconfig (kind kubernetes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cfw.backends._kube.rbac import GUARD_ROLE, GUARD_RULES, Permission, runner_binding, runner_role
from cfw.backends.sdk import require
from cfw.core.errors import WorkFailed

k8s = require("kubernetes.client", "kubernetes")
ApiException = require("kubernetes.client.exceptions", "kubernetes").ApiException
urllib3 = require("urllib3", "kubernetes")

PAGE = 500  # items per list page; a longer list continues with `continue`


class Unavailable(WorkFailed):
    """The API server did not answer this time (overload, restart, network): try again."""


class Forbidden(WorkFailed):
    """The caller's credentials may not do this (403): RBAC, not a passing fault."""


class NoLog(WorkFailed):
    """The API server gives no log for the pod (gone, not started, refused)."""


def connect(host: str, ca_file: Path | None, token: Callable[[], str]) -> Kube:
    """A client for the API server at ``host`` that sends a fresh bearer token."""
    config = k8s.Configuration()
    config.host = host
    if ca_file is not None:
        config.ssl_ca_cert = str(ca_file)
    config.api_key = {"authorization": token()}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.refresh_api_key_hook = lambda c: c.api_key.update(authorization=token())
    return Kube(k8s.ApiClient(config))


def _json(response: Any) -> dict[str, Any]:
    return json.loads(response.data or b"{}")


def _gone(exc: ApiException) -> bool:
    return exc.status == 404


def describe(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message") or str(exc.reason)
    except (TypeError, ValueError):
        return f"{exc.status} {exc.reason}"


class Kube:
    """The few calls the backend makes; every one is one HTTP request (lists: one per page)."""

    def __init__(self, api_client: k8s.ApiClient):
        self.api = api_client
        self.batch = k8s.BatchV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.rbac = k8s.RbacAuthorizationV1Api(api_client)

    # -- jobs ------------------------------------------------------------------------------
    def create_job(self, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return _json(
                self.batch.create_namespaced_job(namespace, manifest, _preload_content=False)
            )
        except ApiException as exc:
            raise WorkFailed(
                f"the API server refused Job {manifest['metadata']['name']}: {describe(exc)}"
            ) from exc

    def list_jobs(
        self, namespace: str, selector: str, fields: str | None = None
    ) -> list[dict[str, Any]]:
        """``fields``: a field selector (Jobs have ``status.successful``)."""
        return self._list(self.batch.list_namespaced_job, namespace, selector, "Jobs", fields)

    def list_pods(
        self, namespace: str, selector: str, fields: str | None = None
    ) -> list[dict[str, Any]]:
        """``fields``: a field selector (``status.phase!=Succeeded``, say)."""
        return self._list(self.core.list_namespaced_pod, namespace, selector, "Pods", fields)

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One Job (None: it does not exist)."""
        try:
            return _json(self.batch.read_namespaced_job(name, namespace, _preload_content=False))
        except ApiException as exc:
            if _gone(exc):
                return None
            if exc.status in (429, 500, 502, 503, 504):
                raise Unavailable(f"reading Job {name}: {exc.status} {exc.reason}") from exc
            raise WorkFailed(f"could not read Job {name}: {exc.status} {describe(exc)}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(f"reading Job {name}: {exc}") from exc

    def _list(
        self,
        call: Callable[..., Any],
        namespace: str,
        selector: str,
        what: str,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
        try:
            return list(self._pages(call, namespace, selector, fields))
        except ApiException as exc:
            if exc.status in (429, 500, 502, 503, 504):
                raise Unavailable(f"listing {what}: {exc.status} {exc.reason}") from exc
            error = Forbidden if exc.status == 403 else WorkFailed
            raise error(
                f"the API server refused to list {what} in {namespace}: "
                f"{exc.status} {describe(exc)}"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            ssl_error = urllib3.exceptions.SSLError
            if isinstance(exc, ssl_error) or isinstance(getattr(exc, "reason", None), ssl_error):
                raise WorkFailed(
                    "the API server's TLS certificate does not verify against the "
                    f"cluster's CA ({getattr(exc, 'reason', exc)})"
                ) from exc
            raise Unavailable(f"listing {what}: {exc}") from exc

    def _pages(
        self, call: Callable[..., Any], namespace: str, selector: str, fields: str | None = None
    ) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": PAGE}
            if fields:
                kwargs["field_selector"] = fields
            if token:
                kwargs["_continue"] = token
            page = _json(call(namespace, _preload_content=False, **kwargs))
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        return self._list(lambda _ns, **kw: self.core.list_node(**kw), "", selector, "Nodes")

    def list_secrets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._list(self.core.list_namespaced_secret, namespace, selector, "Secrets")

    def delete_job(self, namespace: str, name: str) -> bool:
        """Delete a Job and (foreground) its pods; False when it was already gone."""
        try:
            self.batch.delete_namespaced_job(
                name, namespace, body={"propagationPolicy": "Foreground"}, _preload_content=False
            )
            return True
        except ApiException as exc:
            if _gone(exc):
                return False
            raise WorkFailed(f"could not delete Job {name}: {describe(exc)}") from exc

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str:
        """The job container's last lines; NoLog when the API server has none to give."""
        try:
            response = self.core.read_namespaced_pod_log(
                pod, namespace, container="job", tail_lines=tail_lines, _preload_content=False
            )
        except ApiException as exc:
            raise NoLog(f"no log from pod {pod}: {describe(exc)}") from exc
        return (response.data or b"").decode(errors="replace")

    # -- the run's secret ------------------------------------------------------------------
    def put_secret(
        self, namespace: str, name: str, values: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        }
        try:
            try:
                self.core.create_namespaced_secret(namespace, body, _preload_content=False)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.core.replace_namespaced_secret(name, namespace, body, _preload_content=False)
        except ApiException as exc:  # the message names the secret, never its values
            raise WorkFailed(f"could not store Secret {name}: {exc.status} {exc.reason}") from None

    def delete_secret(self, namespace: str, name: str) -> bool:
        try:
            self.core.delete_namespaced_secret(name, namespace, _preload_content=False)
            return True
        except ApiException as exc:
            if _gone(exc):
                return False
            raise WorkFailed(f"could not delete Secret {name}: {describe(exc)}") from exc

    # -- reads and access reviews ---------------------------------------------------------
    def read(self, what: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """A Namespace or ServiceAccount as JSON; None when it does not exist, Forbidden when
        the caller may not read it."""
        calls = {
            "Namespace": lambda: self.core.read_namespace(name, _preload_content=False),
            "ServiceAccount": lambda: self.core.read_namespaced_service_account(
                name, namespace, _preload_content=False
            ),
        }
        try:
            return _json(calls[what]())
        except ApiException as exc:
            if _gone(exc):
                return None
            error = Forbidden if exc.status == 403 else WorkFailed
            raise error(f"could not read {what} {name}: {exc.status} {describe(exc)}") from exc

    def may(self, permission: Permission, namespace: str) -> tuple[bool, str]:
        """Whether the caller may do ``permission`` in ``namespace`` (a SelfSubjectAccessReview,
        which every authenticated user may create), and the authorizer's reason."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": permission.attributes(namespace)},
        }
        api = k8s.AuthorizationV1Api(self.api)
        try:
            response = _json(api.create_self_subject_access_review(body, _preload_content=False))
        except ApiException as exc:
            raise WorkFailed(
                f"the API server refused an access review: {exc.status} {describe(exc)}"
            ) from exc
        status = response.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")

    # -- what jobs need in the cluster (after `terraform apply`) ---------------------------
    def ensure_runner_objects(
        self,
        namespace: str,
        service_account: str,
        annotations: Mapping[str, str],
        subjects: list[dict[str, str]],
        labels: Mapping[str, str],
    ) -> None:
        """Namespace, the jobs' service account (with ``annotations``, e.g. for Workload
        Identity), and the runner Role bound to ``subjects``; created or updated."""
        meta = {"labels": dict(labels)}
        self._apply(
            self.core.create_namespace,
            self.core.replace_namespace,
            None,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, **meta}},
        )
        self._apply(
            self.core.create_namespaced_service_account,
            self.core.replace_namespaced_service_account,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": service_account,
                    "namespace": namespace,
                    **meta,
                    "annotations": dict(annotations),
                },
            },
        )
        self._apply(
            self.rbac.create_namespaced_role,
            self.rbac.replace_namespaced_role,
            namespace,
            runner_role(namespace, labels),
        )
        self._apply(
            self.rbac.create_namespaced_role_binding,
            self.rbac.replace_namespaced_role_binding,
            namespace,
            runner_binding(namespace, subjects, labels),
        )

    def ensure_guard_role(
        self, namespace: str, subjects: list[dict[str, str]], labels: Mapping[str, str]
    ) -> None:
        """The cloud guard's Role (rbac.GUARD_RULES) bound to ``subjects``; created or
        updated."""
        self._apply(
            self.rbac.create_namespaced_role,
            self.rbac.replace_namespaced_role,
            namespace,
            runner_role(namespace, labels, GUARD_RULES, GUARD_ROLE),
        )
        self._apply(
            self.rbac.create_namespaced_role_binding,
            self.rbac.replace_namespaced_role_binding,
            namespace,
            runner_binding(namespace, subjects, labels, GUARD_ROLE),
        )

    def _apply(
        self,
        create: Callable[..., Any],
        replace: Callable[..., Any],
        namespace: str | None,
        body: dict[str, Any],
    ) -> None:
        name = body["metadata"]["name"]
        scope = (namespace,) if namespace else ()
        try:
            try:
                create(*scope, body, _preload_content=False)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                replace(name, *scope, body, _preload_content=False)
        except ApiException as exc:
            raise WorkFailed(f"could not create {body['kind']} {name}: {describe(exc)}") from exc

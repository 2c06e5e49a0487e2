"""A fake Kubernetes API server on 127.0.0.1 for the tests of the Kubernetes kinds (gke,
kubernetes).

It answers the REST paths the official Python client calls, the way the API server does:
objects with metadata (uid, resourceVersion, creationTimestamp), label selectors
(=, ==, !=, in, notin, exists, !exists), field selectors on the fields the API server
offers (Jobs: status.successful; Pods: status.phase, spec.nodeName; metadata.name and
metadata.namespace; any other field is a 400), paginated lists (`limit` and an opaque `continue`
token), 404 Status objects after delete, 409 AlreadyExists, foreground deletion (the Job
keeps a deletionTimestamp and the foregroundDeletion finalizer until its pods are gone),
bearer-token authentication, 403 for the resources in ``forbidden`` (what RBAC denies), and
pod logs (400 while the container never started).

Authorization is RBAC's, from the Roles, ClusterRoles and their bindings stored in the
fake: with ``user`` set (``None``: the token is a cluster administrator's, as kubeconfigs
of a cluster's creator are), SelfSubjectAccessReviews are answered as the API server
answers them (allowed, with RBAC's reason, or not), and with ``enforce_rbac`` every other
request is authorized the same way (403 with the API server's message).

The job controller is played by the test: ``start``/``finish``/``fail`` move a Job's pod
through states whose shapes are copied from real clusters (tests/data/gke/pods.yaml), and
``collect_garbage`` finishes pending foreground deletions. Every request is recorded in
``calls`` as (verb, resource) so tests can count API calls.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from support.tls import ca_and_server

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)"
    r"(?:/namespaces/(?P<ns>[a-z0-9-]+))?/(?P<res>[a-z]+)(?:/(?P<name>[A-Za-z0-9._-]+))?"
    r"(?:/(?P<sub>log))?$"
)
_KINDS = {
    "jobs": "Job",
    "pods": "Pod",
    "nodes": "Node",
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding",
    "resourcequotas": "ResourceQuota",
    "limitranges": "LimitRange",
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
}
_GROUPS = {
    "jobs": "batch",
    "roles": "rbac.authorization.k8s.io",
    "rolebindings": "rbac.authorization.k8s.io",
    "clusterroles": "rbac.authorization.k8s.io",
    "clusterrolebindings": "rbac.authorization.k8s.io",
    "selfsubjectaccessreviews": "authorization.k8s.io",
}
_CLUSTER_SCOPED = {"namespaces", "nodes", "clusterroles", "clusterrolebindings"}
_RBAC_VERBS = {"list": "list", "get": "get", "create": "create", "replace": "update"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_selector(text: str):
    """A label selector as a predicate over a labels dict."""
    requirements = []
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$", part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            requirements.append((key, op, values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append((key.strip(), "notin", {value.strip()}))
        elif "=" in part:
            key, value = re.split(r"==?", part, maxsplit=1)
            requirements.append((key.strip(), "in", {value.strip()}))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "absent", set()))
        else:
            requirements.append((part, "exists", set()))

    def matches(labels: dict[str, str]) -> bool:
        for key, op, values in requirements:
            present = key in labels
            if op == "in" and not (present and labels[key] in values):
                return False
            if op == "notin" and present and labels[key] in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "absent" and present:
                return False
        return True

    return matches


# the field selectors the API server accepts, per resource (others: 400 BadRequest)
_FIELDS: dict[str, dict[str, Any]] = {
    "jobs": {"status.successful": lambda o: str((o.get("status") or {}).get("succeeded") or 0)},
    "pods": {
        "status.phase": lambda o: (o.get("status") or {}).get("phase") or "",
        "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName") or "",
    },
}


def parse_fields(res: str, text: str):
    """A field selector (``a=b,c!=d``) as a predicate over an object; None when it names
    a field the resource cannot be selected by, as the API server refuses it."""
    fields = {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"].get("namespace") or "",
        **_FIELDS.get(res, {}),
    }
    terms = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        m = re.match(r"^([\w.]+)\s*(!=|==|=)\s*(.*)$", part)
        if not m or m.group(1) not in fields:
            return None, (m.group(1) if m else part)
        terms.append((fields[m.group(1)], m.group(2) == "!=", m.group(3)))

    def matches(obj: dict[str, Any]) -> bool:
        return all(
            (get(obj) != value) if negate else (get(obj) == value) for get, negate, value in terms
        )

    return matches, None


class FakeKube:
    def __init__(self, token: str = "test-token", tls: bool = False):
        self.token = token
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.version = 1000
        self.lock = threading.RLock()
        self.max_page: int | None = None  # a server-side page cap, like a busy apiserver
        self.outages: list[int] = []  # status codes to answer the next requests with
        self.forbidden: set[str] = set()  # resources the token's RBAC does not allow (403)
        self.user: str | None = None  # None: a cluster administrator (system:masters)
        self.groups: list[str] = ["system:authenticated"]
        self.enforce_rbac = False  # authorize every request with the stored RBAC
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.ca_pem: bytes | None = None
        scheme = "http"
        if tls:  # a cluster CA and a serving certificate for 127.0.0.1, as GKE's control plane
            import ssl
            import tempfile

            self.ca_pem, chain = ca_and_server()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.NamedTemporaryFile("wb", suffix=".pem") as handle:
                handle.write(chain)
                handle.flush()
                context.load_cert_chain(handle.name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{scheme}://{self.endpoint}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- bookkeeping -------------------------------------------------------------------------
    def count(self, verb: str, resource: str) -> int:
        return sum(1 for c in self.calls if c == (verb, resource))

    def reset_calls(self) -> None:
        self.calls.clear()

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((resource, namespace, name))

    def all(self, resource: str) -> list[dict[str, Any]]:
        return [o for (r, _, _), o in sorted(self.objects.items()) if r == resource]

    def _store(self, resource: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        meta["resourceVersion"] = str(self.version)
        # the API server's record of the write, with its own clock (server-side apply's
        # managedFields): what a reader takes for the object's last write
        meta["managedFields"] = [
            {"manager": "cfw", "operation": "Update", "apiVersion": "v1", "time": now()}
        ]
        if namespace:
            meta["namespace"] = namespace
        self.objects[(resource, namespace, meta["name"])] = obj
        return obj

    # -- the job controller, played by tests ---------------------------------------------------
    def pods_of(self, job: str, namespace: str) -> list[dict[str, Any]]:
        return [
            o
            for (r, ns, _), o in self.objects.items()
            if r == "pods"
            and ns == namespace
            and o["metadata"]["labels"].get("batch.kubernetes.io/job-name") == job
        ]

    def _create_pod(self, job: dict[str, Any]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        template = copy.deepcopy(job["spec"]["template"])
        labels = {
            **template["metadata"].get("labels", {}),
            "batch.kubernetes.io/job-name": name,
            "job-name": name,
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
            "controller-uid": job["metadata"]["uid"],
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{uuid.uuid4().hex[:5]}",
                "labels": labels,
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": name,
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                        "affinity/selector.",
                    }
                ],
            },
        }
        self._store("pods", ns, pod)
        job["status"] = {
            "active": 1,
            "ready": 0,
            "terminating": 0,
            "startTime": now(),
            "uncountedTerminatedPods": {},
        }

    def _pod(self, job: str, namespace: str) -> dict[str, Any]:
        pods = self.pods_of(job, namespace)
        assert pods, f"job {job} has no pod"
        return pods[0]

    def start(self, job: str, namespace: str) -> None:
        with self.lock:
            pod = self._pod(job, namespace)
            pod["status"] = {
                "phase": "Running",
                "startTime": now(),
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"},
                ],
                "containerStatuses": [
                    {
                        "name": "job",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now()}},
                    }
                ],
            }
            self.objects[("jobs", namespace, job)]["status"].update(ready=1)
            self.version += 1

    def set_pod_status(self, job: str, namespace: str, status: dict[str, Any]) -> None:
        """Give the job's pod a status shape (from tests/data/gke/pods.yaml)."""
        with self.lock:
            self._pod(job, namespace)["status"] = copy.deepcopy(status)
            self.version += 1

    def finish(self, job: str, namespace: str) -> None:
        with self.lock:
            pod = self._pod(job, namespace)
            pod["status"] = {
                "phase": "Succeeded",
                "containerStatuses": [
                    {
                        "name": "job",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "startedAt": now(),
                                "finishedAt": now(),
                            }
                        },
                    }
                ],
            }
            self.objects[("jobs", namespace, job)]["status"] = {
                "succeeded": 1,
                "ready": 0,
                "terminating": 0,
                "startTime": now(),
                "completionTime": now(),
                "conditions": [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                ],
            }
            self.version += 1

    def fail(
        self,
        job: str,
        namespace: str,
        pod_status: dict[str, Any] | None,
        reason: str = "BackoffLimitExceeded",
        message: str = "Job has reached the specified backoff limit",
        delete_pods: bool = False,
    ) -> None:
        """The pod ends as ``pod_status``; the Job fails as the job controller fails it."""
        with self.lock:
            if pod_status is not None:
                self._pod(job, namespace)["status"] = copy.deepcopy(pod_status)
            if delete_pods:  # the deadline case: the controller deletes active pods
                for pod in self.pods_of(job, namespace):
                    del self.objects[("pods", namespace, pod["metadata"]["name"])]
            self.objects[("jobs", namespace, job)]["status"] = {
                "failed": 1,
                "ready": 0,
                "terminating": 0,
                "startTime": now(),
                "conditions": [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "reason": reason,
                        "message": message,
                    },
                    {"type": "Failed", "status": "True", "reason": reason, "message": message},
                ],
            }
            self.version += 1

    def collect_garbage(self) -> None:
        """Finish foreground deletions: dependents first, then the owner."""
        with self.lock:
            for key, obj in list(self.objects.items()):
                if key[0] == "jobs" and obj["metadata"].get("deletionTimestamp"):
                    for pod in self.pods_of(key[2], key[1]):
                        del self.objects[("pods", key[1], pod["metadata"]["name"])]
                    del self.objects[key]

    # -- RBAC ----------------------------------------------------------------------------------
    def bind(self, namespace: str, rules: list[dict[str, Any]], name: str = "test-role") -> None:
        """A Role with ``rules`` in ``namespace``, bound to the fake's user."""
        meta = {"name": name, "namespace": namespace}
        self._store("roles", namespace, {"kind": "Role", "metadata": dict(meta), "rules": rules})
        self._store(
            "rolebindings",
            namespace,
            {
                "kind": "RoleBinding",
                "metadata": dict(meta),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "User", "name": self.user}],
            },
        )

    def _subject_matches(self, subject: dict[str, Any]) -> bool:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User":
            return name == self.user
        if kind == "Group":
            return name in self.groups
        if kind == "ServiceAccount":
            return self.user == f"system:serviceaccount:{subject.get('namespace')}:{name}"
        return False

    @staticmethod
    def _rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name) -> bool:
        def has(values, value):
            return "*" in (values or []) or value in (values or [])

        names = rule.get("resourceNames") or []
        return (
            has(rule.get("verbs"), verb)
            and has(rule.get("apiGroups"), group)
            and has(rule.get("resources"), resource)
            and (not names or name in names)
        )

    def authorize(
        self, verb: str, group: str, resource: str, namespace: str, name: str | None = None
    ) -> tuple[bool, str]:
        """RBAC's decision and reason, from the Roles, ClusterRoles and bindings stored here
        (``resource`` may name a subresource: pods/log)."""
        if self.user is None:
            return True, ""
        who = f'User "{self.user}"'
        bindings = [("ClusterRoleBinding", b) for b in self.all("clusterrolebindings")]
        if namespace:
            bindings += [
                ("RoleBinding", b)
                for (r, ns, _), b in sorted(self.objects.items())
                if r == "rolebindings" and ns == namespace
            ]
        for binding_kind, binding in bindings:
            subject = next(
                (s for s in binding.get("subjects") or [] if self._subject_matches(s)), None
            )
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            role_ns = namespace if ref.get("kind") == "Role" else ""
            resource_kind = "roles" if ref.get("kind") == "Role" else "clusterroles"
            role = self.objects.get((resource_kind, role_ns, ref.get("name")))
            for rule in (role or {}).get("rules") or []:
                if self._rule_allows(rule, verb, group, resource, name):
                    where = binding["metadata"]["name"] + (f"/{namespace}" if role_ns else "")
                    return True, (
                        f'RBAC: allowed by {binding_kind} "{where}" of {ref.get("kind")} '
                        f'"{ref.get("name")}" to {who}'
                    )
        return False, ""

    # -- HTTP --------------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str, res: str = "", name: str = ""):
                self._send(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": message,
                        "reason": reason,
                        "details": {"name": name, "kind": res},
                        "code": code,
                    },
                )

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _route(self, method: str):
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._status(401, "Unauthorized", "Unauthorized")
                if fake.outages:
                    code = fake.outages.pop(0)
                    return self._status(
                        code,
                        "ServiceUnavailable",
                        "the server is currently unable to handle the request",
                    )
                url = urlparse(self.path)
                m = _PATH.match(url.path)
                if not m:
                    return self._status(404, "NotFound", f"the server could not find {url.path}")
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                res, ns = m.group("res"), m.group("ns") or ""
                name, sub = m.group("name"), m.group("sub")
                if res in fake.forbidden:
                    return self._status(
                        403,
                        "Forbidden",
                        f'{res} is forbidden: User "runner@example.com" cannot list resource '
                        f'"{res}" in API group "" at the cluster scope',
                        res,
                    )
                with fake.lock:
                    verb = {
                        "GET": "get" if name else "list",
                        "POST": "create",
                        "PUT": "replace",
                        "DELETE": "delete",
                    }[method]
                    if sub == "log":
                        verb = "log"
                    fake.calls.append((verb, res))
                    if fake.enforce_rbac and res != "selfsubjectaccessreviews":
                        denied = self._denied(verb, res, ns, name)
                        if denied:
                            return self._status(403, "Forbidden", denied, res, name or "")
                    return getattr(self, f"_{verb}")(res, ns, name, query)

            def _denied(self, verb, res, ns, name):
                resource = "pods/log" if verb == "log" else res
                rbac_verb = "get" if verb == "log" else _RBAC_VERBS.get(verb, verb)
                group = _GROUPS.get(res, "")
                allowed, _ = fake.authorize(rbac_verb, group, resource, ns, name)
                if allowed:
                    return None
                shown = f"{res}.{group}" if group else res
                scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                return (
                    f'{shown} is forbidden: User "{fake.user}" cannot {rbac_verb} resource '
                    f'"{resource}" in API group "{group}" {scope}'
                )

            def _list(self, res, ns, name, query):
                match = parse_selector(query.get("labelSelector", ""))
                field_match, bad = parse_fields(res, query.get("fieldSelector", ""))
                if field_match is None:
                    return self._status(
                        400, "BadRequest", f'field label not supported: "{bad}"', res
                    )
                items = sorted(
                    (
                        o
                        for (r, n, _), o in fake.objects.items()
                        if r == res
                        and (n == ns or not ns)
                        and match(o["metadata"].get("labels") or {})
                        and field_match(o)
                    ),
                    key=lambda o: o["metadata"]["name"],
                )
                start = 0
                if query.get("continue"):
                    try:
                        token = json.loads(base64.b64decode(query["continue"]))
                        start = next(
                            (
                                i
                                for i, o in enumerate(items)
                                if o["metadata"]["name"] > token["after"]
                            ),
                            len(items),
                        )
                    except (ValueError, KeyError):
                        return self._status(
                            410, "Expired", "the provided continue parameter is too old"
                        )
                limit = int(query.get("limit") or 0) or len(items) or 1
                if fake.max_page:
                    limit = min(limit, fake.max_page)
                page = items[start : start + limit]
                meta: dict[str, Any] = {"resourceVersion": str(fake.version)}
                if start + limit < len(items):
                    after = page[-1]["metadata"]["name"]
                    meta["continue"] = base64.b64encode(
                        json.dumps({"after": after, "rv": fake.version}).encode()
                    ).decode()
                    meta["remainingItemCount"] = len(items) - start - limit
                group = _GROUPS.get(res)
                self._send(
                    200,
                    {
                        "kind": f"{_KINDS[res]}List",
                        "apiVersion": f"{group}/v1" if group else "v1",
                        "metadata": meta,
                        "items": copy.deepcopy(page),
                    },
                )

            def _get(self, res, ns, name, query):
                obj = fake.objects.get((res, ns, name))
                if obj is None:
                    return self._status(404, "NotFound", f'{res} "{name}" not found', res, name)
                self._send(200, obj)

            def _create(self, res, ns, name, query):
                body = self._body()
                if res == "selfsubjectaccessreviews":
                    attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
                    resource = attributes.get("resource", "")
                    if attributes.get("subresource"):
                        resource += "/" + attributes["subresource"]
                    allowed, reason = fake.authorize(
                        attributes.get("verb", ""),
                        attributes.get("group", ""),
                        resource,
                        attributes.get("namespace", ""),
                        attributes.get("name"),
                    )
                    status = {"allowed": allowed}
                    if reason:
                        status["reason"] = reason
                    body["metadata"] = {"creationTimestamp": None}
                    body["status"] = status
                    return self._send(201, body)
                name = body["metadata"]["name"]
                key_ns = "" if res in _CLUSTER_SCOPED else ns
                if (res, key_ns, name) in fake.objects:
                    return self._status(
                        409, "AlreadyExists", f'{res} "{name}" already exists', res, name
                    )
                if res == "secrets" and "stringData" in body:
                    body["data"] = {
                        k: base64.b64encode(v.encode()).decode()
                        for k, v in body.pop("stringData").items()
                    }
                obj = fake._store(res, key_ns, body)
                if res == "jobs":
                    fake._create_pod(obj)
                self._send(201, obj)

            def _replace(self, res, ns, name, query):
                key_ns = "" if res in _CLUSTER_SCOPED else ns
                old = fake.objects.get((res, key_ns, name))
                if old is None:
                    return self._status(404, "NotFound", f'{res} "{name}" not found', res, name)
                body = self._body()
                body["metadata"]["uid"] = old["metadata"]["uid"]
                body["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                self._send(200, fake._store(res, key_ns, body))

            def _delete(self, res, ns, name, query):
                obj = fake.objects.get((res, ns, name))
                if obj is None:
                    return self._status(404, "NotFound", f'{res} "{name}" not found', res, name)
                body = self._body()
                policy = body.get("propagationPolicy") or query.get("propagationPolicy")
                if res == "jobs" and policy == "Foreground":
                    meta = obj["metadata"]
                    meta.setdefault("deletionTimestamp", now())
                    meta["finalizers"] = ["foregroundDeletion"]
                    return self._send(200, obj)
                del fake.objects[(res, ns, name)]
                self._send(
                    200,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Success",
                        "details": {"name": name, "kind": res},
                    },
                )

            def _log(self, res, ns, name, query):
                pod = fake.objects.get(("pods", ns, name))
                if pod is None:
                    return self._status(404, "NotFound", f'pods "{name}" not found', "pods", name)
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                waiting = next(
                    (s["state"]["waiting"] for s in statuses if "waiting" in s.get("state", {})),
                    None,
                )
                if waiting is not None or not statuses:
                    why = (waiting or {}).get("reason", "ContainerCreating")
                    return self._status(
                        400,
                        "BadRequest",
                        f'container "job" in pod "{name}" is waiting to start: {why}',
                    )
                text = fake.logs.get(name, "")
                tail = int(query.get("tailLines") or 0)
                if tail:
                    text = "".join(text.splitlines(keepends=True)[-tail:])
                self._send(200, text, "text/plain")

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PUT(self):
                self._route("PUT")

            def do_DELETE(self):
                self._route("DELETE")

        return Handler

"""The cluster side of kind `kubernetes` (not job calls): may you do what `up` and `run`
need (SelfSubjectAccessReviews, before anything is made), do the namespace and service
account exist, what cfw left in the namespace (`down` deletes it by label and verifies),
and what `cfw status` lists.

The kind's hooks import this module lazily; it reaches the cluster through client.py
(``pip install 'cfw[kubernetes]'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from cfw.backends._kube.client import Forbidden, Kube
from cfw.backends._kube.manifest import ENV_ID_LABEL, MANAGED_BY, env_selector
from cfw.backends._kube.rbac import RUNNER_RULES, Permission, permissions
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.core.errors import CfwError, UserError, WorkFailed

# what a runner does in the namespace: the shared runner Role, and listing Secrets, which
# `cfw down` needs to find a crashed run's Secret by its labels
RUN_RULES = (*RUNNER_RULES, ("", "secrets", ("list",)))
CLEANUP_TIMEOUT_S = 120.0  # how long `down` waits for deleted Jobs to be gone
CLEANUP_POLL_S = 2.0


def create_rules(config: KubernetesConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """What Terraform creates in the namespace (the Role's rules themselves must be held:
    RBAC refuses to grant what the granter may not do)."""
    rules = [
        ("", "serviceaccounts", ("create",)),
        ("rbac.authorization.k8s.io", "roles", ("create",)),
        ("rbac.authorization.k8s.io", "rolebindings", ("create",)),
    ]
    if config.quota:
        rules.append(("", "resourcequotas", ("create",)))
    if config.limits:
        rules.append(("", "limitranges", ("create",)))
    return [*rules, *RUN_RULES]


def missing_permissions(
    kube: Kube, namespace: str, wanted: list[Permission]
) -> list[tuple[Permission, str]]:
    """The permissions an access review denies, each with the authorizer's reason."""
    out = []
    for permission in wanted:
        allowed, reason = kube.may(permission, namespace)
        if not allowed:
            out.append((permission, reason))
    return out


def _listed(missing: list[tuple[Permission, str]]) -> str:
    return ", ".join(str(p) for p, _ in missing)


def check_access(kube: Kube, config: KubernetesConfig) -> None:
    """Before `up` makes anything: a UserError that names every permission missing."""
    ns = config.namespace
    if config.create_namespace:
        wanted = permissions([("", "namespaces", ("create",))])
        missing = missing_permissions(kube, "", wanted)
        missing += missing_permissions(kube, ns, permissions(create_rules(config)))
        if missing:
            raise UserError(
                f"you may not create namespace {ns} and what cfw puts in it: missing "
                f"{_listed(missing)}",
                "ask the cluster's admins for them, or for the namespace (they can make it "
                "with modules/kubernetes-namespace) and set create_namespace: false",
            )
        return
    missing = missing_permissions(kube, ns, permissions(RUN_RULES))
    if missing:
        raise UserError(
            f"you may not run jobs in namespace {ns}: missing {_listed(missing)}",
            "ask the cluster's admins to bind you to a Role with them in the namespace (the "
            "Role of modules/kubernetes-namespace has exactly these)",
        )
    _check_exists(kube, "Namespace", ns, None, "ask the cluster's admins to create it")
    _check_exists(
        kube,
        "ServiceAccount",
        config.jobs_service_account,
        ns,
        f"set service_account: to one that exists in {ns}, or ask the admins to create it",
    )


def _check_exists(kube: Kube, what: str, name: str, namespace: str | None, hint: str) -> None:
    try:
        found = kube.read(what, name, namespace)
    except Forbidden:  # may not read it: the jobs will tell
        return
    if found is None:
        where = f" in namespace {namespace}" if namespace else ""
        raise UserError(f"{what} {name} does not exist{where}", hint)


def _namespace(config: KubernetesConfig, outputs: Mapping[str, Any]) -> str:
    return str(outputs.get("namespace") or config.namespace)


def cfw_objects(kube: Kube, namespace: str, env_id: str) -> dict[str, list[str]]:
    """What carries the environment's id in the namespace: Jobs, their pods, run Secrets."""
    selector = env_selector(env_id)
    return {
        "Job": [j["metadata"]["name"] for j in kube.list_jobs(namespace, selector)],
        "Pod": [p["metadata"]["name"] for p in kube.list_pods(namespace, selector)],
        "Secret": [s["metadata"]["name"] for s in kube.list_secrets(namespace, selector)],
    }


def cleanup(
    kube: Kube,
    namespace: str,
    env_id: str,
    timeout: float = CLEANUP_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Delete the environment's Jobs (their pods first) and run Secrets, and wait until the
    Jobs are gone; other environments' objects in a shared namespace are left alone."""
    found = cfw_objects(kube, namespace, env_id)
    for name in found["Job"]:
        kube.delete_job(namespace, name)
    for name in found["Secret"]:
        kube.delete_secret(namespace, name)
    deadline = time.monotonic() + timeout
    waited = False  # one wait at least, however slow the first look was
    while cfw_objects(kube, namespace, env_id)["Job"]:
        if waited and time.monotonic() >= deadline:
            raise WorkFailed(
                f"the Jobs of the environment in namespace {namespace} were deleted but are "
                f"still there after {timeout:g} s"
            )
        sleep(CLEANUP_POLL_S)
        waited = True


def leftovers(kube: Kube, config: KubernetesConfig, env_id: str, namespace: str) -> list[str]:
    """What still exists of the environment after destroy (empty: clean)."""
    left = [
        f"{what} {namespace}/{name}"
        for what, names in cfw_objects(kube, namespace, env_id).items()
        for name in names
    ]
    if config.create_namespace:
        try:
            found = kube.read("Namespace", namespace)
        except Forbidden as exc:
            return [*left, f"namespace {namespace} (could not check: {exc})"]
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        if found is not None and labels.get(ENV_ID_LABEL) == env_id:
            phase = (found.get("status") or {}).get("phase") or "Active"
            left.append(f"namespace {namespace} ({phase})")
    return left


def safe_leftovers(
    connect: Callable[[], Kube], config: KubernetesConfig, env_id: str, namespace: str
) -> list[str]:
    """:func:`leftovers`, or why they could not be listed (which is not clean either)."""
    try:
        return leftovers(connect(), config, env_id, namespace)
    except CfwError as exc:
        return [f"namespace {namespace} (could not check what is left: {exc.message})"]


def status_details(
    kube: Kube, config: KubernetesConfig, outputs: Mapping[str, Any]
) -> dict[str, Any]:
    from cfw.backends.kubernetes import status

    env_id = outputs.get("cfw_id")
    selector = env_selector(str(env_id)) if env_id else f"{MANAGED_BY}=cfw"
    jobs = kube.list_jobs(_namespace(config, outputs), selector)
    try:
        nodes: list[dict[str, Any]] | None = kube.list_nodes("")
    except Forbidden:  # nodes are cluster-scoped; a namespace's Role grants none
        nodes = None
    return status.details(config.node_pools, nodes, jobs)

"""What a person running workflows may do in a namespace: the runner Role's rules, the Role
and RoleBinding objects, and the single permissions they grant (for access reviews). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RUNNER_ROLE = "cfw-runner"
# (API group, resource, verbs): submit, watch and stop Jobs, read their pods and logs, and
# keep the run's Secret, and the runs' heartbeats (ConfigMaps, _kube/guard.py)
RUNNER_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch", "jobs", ("create", "get", "list", "watch", "delete")),
    ("", "pods", ("get", "list", "watch")),
    ("", "pods/log", ("get",)),
    ("", "secrets", ("create", "get", "update", "delete")),
    ("", "configmaps", ("create", "get", "list", "update", "delete")),
)

GUARD_ROLE = "cfw-guard"
# what the cloud guard does in the namespace (_kube/guard.py): list and delete the Jobs,
# read the heartbeats and write its record (ConfigMaps); nothing else, no Secret
GUARD_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch", "jobs", ("list", "delete")),
    ("", "configmaps", ("create", "get", "list", "update")),
)


@dataclass(frozen=True)
class Permission:
    """One verb on one resource (``pods/log``: a subresource) of an API group."""

    verb: str
    group: str
    resource: str

    def attributes(self, namespace: str) -> dict[str, str]:
        """The ``resourceAttributes`` of an access review of this permission."""
        resource, _, subresource = self.resource.partition("/")
        out = {"namespace": namespace, "verb": self.verb, "group": self.group}
        out["resource"] = resource
        if subresource:
            out["subresource"] = subresource
        return out

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f" ({self.group})" if self.group else "")


def permissions(rules: Iterable[tuple[str, str, Sequence[str]]]) -> list[Permission]:
    """Every single permission a list of rules grants, in the rules' order."""
    return [Permission(verb, group, resource) for group, resource, verbs in rules for verb in verbs]


def role_rules(rules: Iterable[tuple[str, str, Sequence[str]]]) -> list[dict[str, Any]]:
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
        for group, resource, verbs in rules
    ]


def runner_role(
    namespace: str,
    labels: Mapping[str, str],
    rules: Iterable[tuple[str, str, Sequence[str]]] = RUNNER_RULES,
    name: str = RUNNER_ROLE,
) -> dict[str, Any]:
    """What a person running workflows may do in the namespace, and nothing else (or, with
    NAME and RULES, another Role: the guard's)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "rules": role_rules(rules),
    }


def runner_binding(
    namespace: str,
    subjects: list[dict[str, str]],
    labels: Mapping[str, str],
    name: str = RUNNER_ROLE,
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [dict(s) for s in subjects],
    }

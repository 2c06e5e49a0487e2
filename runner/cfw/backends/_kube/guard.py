"""The guard's adapter for the Kubernetes kinds (gke, kubernetes): heartbeats as ConfigMaps in
the environment's namespace, jobs as the Jobs carrying the environment's cfw-id.

Why ConfigMaps: every runner can already reach the namespace (no other credential, and
for kind `kubernetes` there may be no bucket cfw can write); the API server stamps every
write with its own clock (``metadata.managedFields[].time``), which is the time the guard
goes by. One ConfigMap per key (``cfw-hb-<hash>``), the key in an annotation, the body in
``data.body``, found by the labels ``cfw-store`` and ``cfw-id``.

Cancel deletes Jobs (foreground: their pods go too) by name; one already gone is no error.
Stop has nothing to do here: node pools scale down by themselves once no pod asks for them
(gke's cluster autoscaler; kind `kubernetes` bills nothing cfw made). Scaling a GKE cluster's
pools to zero at ttl is the cloud guard's.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cfw.backends._kube.client import ApiException, Kube, describe
from cfw.backends._kube.manifest import (
    ENV_ID_LABEL,
    MANAGED_BY,
    RUN_LABEL,
    env_selector,
    label_value,
)
from cfw.backends._kube.status import job_phase
from cfw.core.errors import WorkFailed
from cfw.core.guard import Action, Job
from cfw.core.heartbeat import ObjectInfo

STORE_LABEL = "cfw-store"
KEY_ANNOTATION = "cfw/key"


class ConfigMapStore:
    """HeartbeatStore in ConfigMaps of one namespace."""

    def __init__(self, kube: Kube, namespace: str, env_id: str):
        self.kube, self.namespace, self.env_id = kube, namespace, env_id
        self.labels = {
            MANAGED_BY: "cfw",
            ENV_ID_LABEL: label_value(env_id),
            STORE_LABEL: "heartbeat",
        }

    def _name(self, key: str) -> str:
        return "cfw-hb-" + hashlib.sha256(f"{self.env_id}/{key}".encode()).hexdigest()[:20]

    def put(self, key: str, body: bytes) -> None:
        name = self._name(key)
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
                "annotations": {KEY_ANNOTATION: key},
            },
            "data": {"body": body.decode("utf-8")},
        }
        core = self.kube.core
        try:
            try:
                core.create_namespaced_config_map(self.namespace, obj, _preload_content=False)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                core.replace_namespaced_config_map(
                    name, self.namespace, obj, _preload_content=False
                )
        except ApiException as exc:
            raise WorkFailed(f"could not write ConfigMap {name}: {describe(exc)}") from exc

    def get(self, key: str) -> bytes | None:
        name = self._name(key)
        try:
            response = self.kube.core.read_namespaced_config_map(
                name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise WorkFailed(f"could not read ConfigMap {name}: {describe(exc)}") from exc
        obj = json.loads(response.data or b"{}")
        if (obj.get("metadata", {}).get("annotations") or {}).get(KEY_ANNOTATION) != key:
            return None
        return str((obj.get("data") or {}).get("body", "")).encode()

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self.kube.core.delete_namespaced_config_map(
                name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                raise WorkFailed(f"could not delete ConfigMap {name}: {describe(exc)}") from exc

    def list(self, prefix: str) -> list[ObjectInfo]:
        selector = ",".join(f"{k}={v}" for k, v in self.labels.items())
        found = []
        for obj in self.kube._list(
            self.kube.core.list_namespaced_config_map, self.namespace, selector, "ConfigMaps"
        ):
            meta = obj.get("metadata") or {}
            key = (meta.get("annotations") or {}).get(KEY_ANNOTATION) or ""
            if key.startswith(prefix):
                found.append(ObjectInfo(key, written_at(meta)))
        return sorted(found, key=lambda o: o.key)


def written_at(meta: dict[str, Any]) -> datetime:
    """The API server's time of the object's last write."""
    times = [f.get("time") for f in meta.get("managedFields") or [] if f.get("time")]
    return max(_time(t) for t in times) if times else _time(meta.get("creationTimestamp"))


def _time(value: Any) -> datetime:
    if not value:
        return datetime.fromtimestamp(0, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


class KubeGuard:
    """Adapter (cfw.core.guard_check) of a Kubernetes environment."""

    prefix = ""

    def __init__(self, kube: Kube, namespace: str, env_id: str, label: str = "Kubernetes"):
        self.kube, self.namespace, self.env_id, self.label = kube, namespace, env_id, label
        self.store = ConfigMapStore(kube, namespace, env_id)

    def jobs(self) -> list[Job]:
        jobs = []
        for obj in self.kube.list_jobs(self.namespace, env_selector(self.env_id)):
            meta = obj.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue  # being deleted: its pods are going
            state = job_phase(obj)
            if state.finished:
                continue
            run = (meta.get("labels") or {}).get(RUN_LABEL) or None
            jobs.append(
                Job(meta["name"], run, state.value.upper(), _time(meta.get("creationTimestamp")))
            )
        return jobs

    def stopped(self) -> bool | None:
        return None

    def cancel(self, action: Action) -> list[str]:
        names = list(action.job_ids) or [
            j.job_id for j in self.jobs() if action.run_id and j.run_id == action.run_id
        ]
        return [name for name in names if self.kube.delete_job(self.namespace, name)]

    def stop(self, action: Action) -> str:
        return (
            "nothing to stop from here: node pools scale down by themselves once no pod "
            "asks for them"
        )

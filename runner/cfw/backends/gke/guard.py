"""The guard's adapter for kind `gke`: the runs' heartbeats and Jobs through the shared
Kubernetes adapter (cfw.backends._kube.guard: ConfigMaps and Jobs of the namespace), and
what bills through GKE's own API (google-cloud-container): stop scales every job pool to
zero nodes, and past the ttl the system pool too, by switching its autoscaling off and
setting its size to 0 (each change an Operation that is waited for; GKE refuses a change
while another runs on the cluster, so the guard waits for that one and tries again).
`cfw up` restores them: Terraform puts the pools' autoscaling back.

What bills while stopped: the cluster's control-plane fee, until `cfw down` (or `cfw reap`
past the ttl). The API reports no pool's node count, so stopped() tells only "running"
(some pool still autoscales) from "the record decides".

In the cloud, `cfw up gke` deploys this adapter in a Cloud Function (modules/gcp-guard)
whose service account may get the cluster and its operations and update it (GKE has no
per-pool permission), and, in the namespace, only the guard's Role (rbac.GUARD_RULES). It
reaches the Kubernetes API at the cluster's public endpoint, which admits it while
`authorized_networks` has the default 0.0.0.0/0. When the API cannot be reached, it says so
in its log and enforces the ttl only: no orphaned run's Jobs are cancelled (they end by
their activeDeadlineSeconds, capped at the ttl), idle stops nothing (it cannot tell whether
a run is live), and no record is written (`cfw status` shows the last one).

Imports no cfw config model: zipped into the function (cfw.backends._google.guard_zip).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfw.backends._kube.guard import KubeGuard
from cfw.backends.sdk import require
from cfw.core.errors import WorkFailed
from cfw.core.guard import Action, Job, parse_expires_at
from cfw.core.heartbeat import ObjectInfo

SYSTEM_POOL = "system"  # modules/gke-cluster's pool for the cluster's own pods
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
WAIT_S = 420.0  # for the operations of one stop (the function may run 540 s; a stop cut
# short is carried on by the next check: the pools still autoscaling are not stopped yet)
POLL_S = 3.0


def pause(seconds: float) -> None:
    """Between polls of an operation (tests let the fake's operations finish here)."""
    time.sleep(seconds)


class Pools:
    """One cluster's node pools through google-cloud-container's ClusterManager."""

    def __init__(self, manager: Any, cluster: str):  # projects/P/locations/L/clusters/C
        self.manager, self.cluster = manager, cluster
        self.where = cluster.split("/clusters/")[0]  # projects/P/locations/L

    def list(self) -> list[Any]:
        c = require("google.cloud.container_v1", "gke")
        request = c.ListNodePoolsRequest(parent=self.cluster)
        return list(self.manager.list_node_pools(request=request).node_pools)

    def scale_to_zero(self, pool: Any, deadline: float) -> None:
        """Autoscaling off (else the autoscaler adds nodes back for pending pods), then no
        node; each change waited for until DEADLINE (time.monotonic). Idempotent: a pool
        already off is only sized to 0."""
        c = require("google.cloud.container_v1", "gke")
        name = f"{self.cluster}/nodePools/{pool.name}"
        if pool.autoscaling.enabled:
            off = c.SetNodePoolAutoscalingRequest(
                name=name, autoscaling=c.NodePoolAutoscaling(enabled=False)
            )
            self._change(lambda: self.manager.set_node_pool_autoscaling(request=off), deadline)
        empty = c.SetNodePoolSizeRequest(name=name, node_count=0)
        self._change(lambda: self.manager.set_node_pool_size(request=empty), deadline)

    def _change(self, call: Callable[[], Any], deadline: float) -> None:
        gexc = require("google.api_core.exceptions", "gke")
        while True:
            try:
                operation = call()
                break
            except gexc.FailedPrecondition as exc:  # another operation runs on the cluster
                if time.monotonic() >= deadline:
                    raise WorkFailed(f"GKE kept refusing the change: {exc.message}") from exc
                pause(POLL_S)
        self._wait(operation, deadline)

    def _wait(self, operation: Any, deadline: float) -> None:
        c = require("google.cloud.container_v1", "gke")
        request = c.GetOperationRequest(name=f"{self.where}/operations/{operation.name}")
        while operation.status != c.Operation.Status.DONE:
            if time.monotonic() >= deadline:
                raise WorkFailed(f"GKE operation {operation.name} is still running")
            pause(POLL_S)
            operation = self.manager.get_operation(request=request)
        if operation.error.code:
            raise WorkFailed(f"GKE operation {operation.name} failed: {operation.error.message}")


class Unseen:
    """The HeartbeatStore of a guard that cannot reach the Kubernetes API: sees no
    heartbeat and no record, and keeps none."""

    def put(self, key: str, body: bytes) -> None:
        return None

    def get(self, key: str) -> bytes | None:
        return None

    def delete(self, key: str) -> None:
        return None

    def list(self, prefix: str) -> list[ObjectInfo]:
        return []


class GkeGuard:
    """Adapter (cfw.core.guard_check) of a GKE environment. KUBE is None when the
    Kubernetes API cannot be reached (UNREACHABLE says why): then only the ttl is enforced."""

    prefix = ""

    def __init__(
        self,
        pools: Pools,
        kube: KubeGuard | None,
        expires_at: datetime | None,
        unreachable: str = "",
    ):
        self.pools, self.kube, self.expires_at = pools, kube, expires_at
        self.unreachable = unreachable
        self.store = kube.store if kube is not None else Unseen()

    def jobs(self) -> list[Job]:
        return self.kube.jobs() if self.kube is not None else []

    def cancel(self, action: Action) -> list[str]:
        return self.kube.cancel(action) if self.kube is not None else []

    def _past_ttl(self) -> bool:
        return self.expires_at is not None and datetime.now(UTC) >= self.expires_at

    def _targets(self, ttl: bool) -> list[Any]:
        """The job pools; past the ttl, the system pool too."""
        return [p for p in self.pools.list() if ttl or p.name != SYSTEM_POOL]

    def stopped(self) -> bool | None:
        """False while a pool the stop would scale down still autoscales (running, or put
        back by `cfw up`); otherwise the record decides."""
        if any(p.autoscaling.enabled for p in self._targets(self._past_ttl())):
            return False
        return None

    def stop(self, action: Action) -> str:
        ttl = action.cause == "ttl"
        if self.kube is None and not ttl:
            raise WorkFailed(
                f"not stopping for idle: {self.unreachable}, so the guard cannot tell whether "
                "a run is live"
            )
        pools = self._targets(ttl)
        deadline = time.monotonic() + WAIT_S
        for pool in pools:
            self.pools.scale_to_zero(pool, deadline)
        names = ", ".join(p.name for p in pools) or "none"
        return (
            f"scaled node pools {names} to zero (autoscaling off; `cfw up` restores them); "
            "the control plane bills until `cfw down`"
        )


def cluster_manager(credentials: Any) -> Any:
    """google-cloud-container's client (tests swap in one bound to a fake)."""
    return require("google.cloud.container_v1", "gke").ClusterManagerClient(credentials=credentials)


def kube_of(manager: Any, cluster: str, credentials: Any) -> Any:
    """A Kubernetes client for the cluster at its endpoint, trusting its CA (from the GKE
    API), with bearer tokens of CREDENTIALS (GKE authenticates a Google account so)."""
    from cfw.backends._kube import client

    request = require("google.auth.transport.requests", "gke").Request
    found = manager.get_cluster(name=cluster)
    # one file per CA, named by its content: a cluster's CA rotated, or two clusters of one
    # name (checks side by side in one machine), never read another's
    ca = base64.b64decode(found.master_auth.cluster_ca_certificate)
    ca_file = Path(tempfile.gettempdir()) / f"cfw-gke-ca-{hashlib.sha256(ca).hexdigest()[:16]}.pem"
    fd, tmp = tempfile.mkstemp(dir=ca_file.parent, suffix=".pem")  # 0600
    with os.fdopen(fd, "wb") as handle:
        handle.write(ca)
    os.replace(tmp, ca_file)

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(request())
        return credentials.token

    return client.connect(f"https://{found.endpoint}", ca_file, token)


def from_environ(environ: Mapping[str, str], session: Any = None) -> GkeGuard:
    """The adapter the guard's function builds from the variables the root module sets
    (CFW_GUARD_CLUSTER, projects/P/locations/L/clusters/C; CFW_GUARD_NAMESPACE;
    CFW_GUARD_ENV_ID; CFW_GUARD_EXPIRES_AT), with the function's own credentials (SESSION
    is unused)."""
    google_auth = require("google.auth", "gke")
    credentials, _ = google_auth.default(scopes=SCOPES)
    cluster = environ["CFW_GUARD_CLUSTER"]
    manager = cluster_manager(credentials)
    pools = Pools(manager, cluster)
    expires_at = parse_expires_at(environ.get("CFW_GUARD_EXPIRES_AT"))
    env_id, namespace = environ["CFW_GUARD_ENV_ID"], environ["CFW_GUARD_NAMESPACE"]
    try:
        kube = KubeGuard(kube_of(manager, cluster, credentials), namespace, env_id, "GKE")
        kube.store.list("")  # can it see the namespace?
    except Exception as exc:  # whatever keeps it from the API: the ttl is still enforced
        reason = f"the Kubernetes API of {cluster.rsplit('/', 1)[-1]} cannot be reached ({exc})"
        print(
            f"cfw guard: {reason}: enforcing the ttl only (node pools to zero); no orphaned "
            "run's Jobs are cancelled, idle stops nothing and no record is written"
        )
        return GkeGuard(pools, None, expires_at, reason.splitlines()[0][:300])
    return GkeGuard(pools, kube, expires_at)

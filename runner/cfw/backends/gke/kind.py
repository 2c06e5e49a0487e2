"""Kind `gke` as the core sees it. Imports no cloud SDK: its hooks import cloud.py (GKE's
control plane) and client.py (the Kubernetes API) when they run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.gke.config import GkeConfig, node_pools
from cfw.backends.kind import Identity, Kind
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice, PoolPrice
from cfw.core.rootmodule import ModuleCall, RootSpec

PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
REGION_VARS = ("GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION")
STORAGE_SUBDIR = "cfw"


def _split_id(env_id: str) -> tuple[str, str]:
    name, _, suffix = env_id.rpartition("-")
    return (name, suffix) if name else (env_id, "")


def account_id(prefix: str, env_id: str) -> str:
    """A Google service account id (6-30 characters) that keeps the id's random part."""
    name, suffix = _split_id(env_id)
    raw = "-".join(p for p in (prefix, suffix, name) if p)
    return re.sub(r"-+$", "", raw[:30])


def names(config: GkeConfig, env_id: str) -> dict[str, str]:
    """Names of what `up` creates, derived from the environment's unique id."""
    default = f"cfw-{env_id}-{config.project or 'project'}"[:63]
    bucket = config.bucket or re.sub(r"[-_]+$", "", default)
    return {
        "cluster": f"cfw-{env_id}"[:40].rstrip("-"),
        "network": f"cfw-{env_id}"[:40].rstrip("-"),
        "bucket": bucket,
        "jobs_account_id": account_id("cfwj", env_id),
        "nodes_account_id": account_id("cfwn", env_id),
    }


def _emails(config: GkeConfig, env_id: str) -> dict[str, str]:
    n = names(config, env_id)
    domain = f"{config.project}.iam.gserviceaccount.com"
    return {
        "jobs_account": f"{n['jobs_account_id']}@{domain}",
        "nodes_account": f"{n['nodes_account_id']}@{domain}",
        "network": n["network"],
    }


class GkeKind(Kind[GkeConfig]):
    name = "gke"
    label = "GKE"
    summary = "a GKE cluster with autoscaling (Spot, GPU) pools; each job a Kubernetes Job"
    config_model = GkeConfig
    root = RootSpec(
        modules=(ModuleCall("gke-cluster", "gke_cluster"),),
        providers=("google",),
        outputs={"project": ("GCP project id.", "var.project")},
    )
    capabilities = Capabilities(gpu=True, spot=True, machine_types=True)
    backend_path = "cfw.backends.gke.backend:GkeBackend"
    translate_path = "cfw.backends.gke.translate:translate"
    extra = "gke"
    default_jobs = 100

    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        project = next((environ[v] for v in PROJECT_VARS if environ.get(v)), None)
        region = next((environ[v] for v in REGION_VARS if environ.get(v)), None)
        if project:
            out["project"] = project
        if region:
            out["region"] = region
        return out

    def preflight(self, config: GkeConfig, environ: Mapping[str, str]) -> None:
        if not config.project:
            raise UserError(
                f"no GCP project is set for environment {config.name or 'gke'}",
                "pass --project PROJECT, set project: in "
                f"environments/{config.name or 'gke'}.yaml, or set GOOGLE_CLOUD_PROJECT",
            )
        from cfw.backends.gke import cloud

        cloud.check_project(config.project)

    # -- rendering --------------------------------------------------------------------------
    def tfvars(self, config: GkeConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        n = names(config, ident.env_id)
        return {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": ident.labels(config.labels),
            "project": config.project or "",
            "region": config.region,
            "location": config.location,
            "cluster_name": n["cluster"],
            "release_channel": config.release_channel,
            "authorized_networks": list(config.authorized_networks),
            "system_machine_type": config.system_machine_type,
            "node_pools": {
                pool.name: {
                    "machine_type": pool.machine_type,
                    "spot": pool.spot,
                    "max_nodes": pool.max_nodes,
                    "disk_size_gb": config.disk_size_gb,
                    "disk_type": config.disk_type,
                    "accelerator_type": pool.accelerator,
                    "accelerator_count": pool.accelerator_count,
                    "driver_version": pool.driver_version,
                    "zones": list(pool.zones),
                }
                for pool in node_pools(config)
            },
            "bucket_name": n["bucket"],
            "bucket_retention_days": config.bucket_retention_days,
            "namespace": config.namespace,
            "service_account": config.service_account,
            "runners": list(config.runners),
            "jobs_account_id": n["jobs_account_id"],
            "nodes_account_id": n["nodes_account_id"],
        }

    def output_placeholders(self, config: GkeConfig, ident: Identity | None) -> dict[str, Any]:
        env_id = ident.env_id if ident else "adhoc"
        n = names(config, env_id)
        return {
            "project": config.project or "<project>",
            "cluster_name": n["cluster"],
            "cluster_location": config.location,
            "cluster_endpoint": "<cluster endpoint: known after cfw up>",
            "bucket_name": n["bucket"] if ident else "<bucket-known-after-up>",
            "namespace": config.namespace,
            "service_account": config.service_account,
            "node_pools": {p.name: p.machine_type for p in node_pools(config)},
        }

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: GkeConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        bucket = outputs.get("bucket_name") or "<bucket-known-after-up>"
        project = outputs.get("project") or config.project or ""
        # jobs reach the bucket through Workload Identity; the runner with its own ADC
        return StorageSpec(
            provider="gcs",
            prefix=f"gcs://{bucket}/{STORAGE_SUBDIR}",
            env={"SNAKEMAKE_STORAGE_GCS_PROJECT": project},
        )

    def price(self, spec: JobSpec, ctx: EnvContext[GkeConfig]) -> JobPrice:
        """The job's share of a node of the cheapest pool that can hold it."""
        from cfw.backends.gke import price

        return price.job_price(spec, ctx)

    def pool_prices(self, config: GkeConfig) -> list[PoolPrice]:
        from cfw.backends.gke import price

        return price.pool_prices(config)

    def after_apply(
        self, config: GkeConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """Namespace, Workload Identity service account and runner RBAC, through the API."""
        from cfw.backends.gke import cloud

        cloud.create_runner_objects(config, outputs)

    # -- the guard: heartbeats as ConfigMaps, Jobs by the environment's label ---------------
    def heartbeat_store(self, ctx: EnvContext[GkeConfig], environ: Mapping[str, str]):
        adapter = self.guard_adapter(ctx, environ)
        return adapter.store, adapter.prefix

    def guard_adapter(self, ctx: EnvContext[GkeConfig], environ: Mapping[str, str]):
        from cfw.backends._kube.guard import KubeGuard
        from cfw.backends.gke import cloud

        namespace = ctx.outputs.get("namespace") or ctx.config.namespace
        return KubeGuard(cloud.connect(ctx.config, ctx.outputs), namespace, ctx.env_id, self.label)

    def status_details(self, config: GkeConfig, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Job nodes per pool and Jobs by state (one list of nodes, one of the namespace's Jobs).

        Nodes are cluster-scoped: a runner with only the namespace's Role may not list
        them, and sees them as unknown (Kubernetes Engine Cluster Viewer does not grant it).
        """
        from cfw.backends._kube.client import Forbidden
        from cfw.backends._kube.manifest import MANAGED_BY
        from cfw.backends.gke import cloud, status
        from cfw.backends.gke.translate import POOL_LABEL

        kube = cloud.connect(config, outputs)
        try:
            nodes: list[dict[str, Any]] | None = kube.list_nodes(POOL_LABEL)
        except Forbidden:  # the runner Role is namespaced: it grants no node access
            nodes = None
        namespace = outputs.get("namespace") or config.namespace
        jobs = kube.list_jobs(namespace, f"{MANAGED_BY}=cfw")
        return status.details(outputs.get("node_pools") or {}, nodes, jobs)

    # -- teardown ---------------------------------------------------------------------------
    def leftovers(
        self,
        config: GkeConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        if not config.project:
            return []
        from cfw.backends.gke import cloud

        return cloud.leftovers(config.project, ident.env_id, _emails(config, ident.env_id))


KIND = GkeKind()

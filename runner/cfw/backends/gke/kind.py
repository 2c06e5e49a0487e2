"""Kind `gke` as the core sees it. Imports no cloud SDK: its hooks import cloud.py (GKE's
control plane) and client.py (the Kubernetes API) when they run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfw.backends._google import guard_deploy
from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.gke.config import GkeConfig, node_pools
from cfw.backends.kind import Identity, Kind
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice, PoolPrice
from cfw.core.rootmodule import ModuleCall, RootSpec

PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
REGION_VARS = ("GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION")
STORAGE_SUBDIR = "cfw"
GUARD_ADAPTER = "cfw.backends.gke.guard"  # zipped into the guard's function


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
    def root_spec(self, config: GkeConfig) -> RootSpec:
        """The cluster, and the guard (modules/gcp-guard) unless guard.enabled is false."""
        return guard_deploy.with_guard(self.root, config)

    def render_files(self, config: GkeConfig, outdir: Path) -> None:
        """The guard function's zip, in guard/ next to the root module."""
        guard_deploy.render(config, GUARD_ADAPTER, outdir)

    def tfvars(self, config: GkeConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        n = names(config, ident.env_id)
        labels = ident.labels(config.labels)
        return {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": labels,
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
            **guard_deploy.tfvars(config, labels, GUARD_ADAPTER, ident.env_id),
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

    def on_spot(self, spec: JobSpec, ctx: EnvContext[GkeConfig]) -> bool:
        """A preemptible job that a Spot pool can hold (else it runs on demand)."""
        if not spec.preemptible:
            return False
        from cfw.backends.gke.translate import available_pools, select_pools

        pools = available_pools(ctx.config, dict(ctx.outputs))
        return select_pools(spec, pools, ctx.name, ctx.config)[1]

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
        kube = self._kube_guard(ctx)
        return kube.store, kube.prefix

    def guard_adapter(self, ctx: EnvContext[GkeConfig], environ: Mapping[str, str]):
        """The namespace's Jobs and heartbeats, and the cluster's pools (stop scales them to
        zero, as the cloud guard does: cfw.backends.gke.guard)."""
        from cfw.backends.gke import cloud
        from cfw.backends.gke.guard import GkeGuard, Pools
        from cfw.core.guard import parse_expires_at

        project = str(ctx.outputs.get("project") or ctx.config.project)
        location = ctx.outputs.get("cluster_location") or ctx.config.location
        cluster = (
            f"projects/{project}/locations/{location}/clusters/{ctx.outputs.get('cluster_name')}"
        )
        pools = Pools(cloud.cluster_manager(cloud.credentials(project)), cluster)
        labels = ctx.outputs.get("cfw_labels") or {}
        return GkeGuard(
            pools, self._kube_guard(ctx), parse_expires_at(labels.get("cfw-expires-at"))
        )

    def _kube_guard(self, ctx: EnvContext[GkeConfig]):
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

        guard = guard_deploy.leftover_urls(
            config.project, config.region, guard_deploy.name_of(f"cfw-{ident.env_id}"), ident.env_id
        )
        emails = _emails(config, ident.env_id)
        return cloud.leftovers(config.project, ident.env_id, emails, more=guard)


KIND = GkeKind()

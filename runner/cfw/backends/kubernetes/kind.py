"""Kind `kubernetes` as the core sees it: a cluster cfw did not create (EKS, AKS, on-premises,
any kubeconfig context). `up` makes a namespace, the jobs' and runners' service accounts, a
Role limited to Jobs, pods, logs and Secrets in it and an optional quota, nothing
cluster-wide (modules/kubernetes-namespace); with ``create_namespace: false`` it makes
nothing and checks that you may run jobs in the namespace. Imports no SDK: its hooks
import client.py and cloud.py when they run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.kind import Identity, Kind
from cfw.backends.kubernetes.config import KubernetesConfig, Limits, Quota
from cfw.backends.kubernetes.kubeconfig import kubeconfig_paths
from cfw.core.prices import JobPrice
from cfw.core.rootmodule import ModuleCall, RootSpec

RUNNER_SERVICE_ACCOUNT = "cfw-runner"
SUBJECT_KINDS = {"user": "User", "group": "Group", "serviceaccount": "ServiceAccount"}
NAMESPACE_ROOT = RootSpec(
    modules=(ModuleCall("kubernetes-namespace", "namespace"),),
    providers=("kubernetes",),
    variables={"context": "Kubeconfig context the kubernetes provider uses (null: the current)."},
)
EXISTING_ROOT = RootSpec(  # the namespace exists: the state records it, nothing is created
    variables={
        "namespace": "Namespace the jobs run in (it exists; cfw creates nothing).",
        "jobs_service_account": "Service account the jobs run as (it exists).",
    },
    outputs={
        "namespace": ("Namespace the jobs run in.", "var.namespace"),
        "jobs_service_account": ("Service account the jobs run as.", "var.jobs_service_account"),
    },
)


def _cpu(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _memory(mb: int | None) -> str | None:
    return None if mb is None else f"{mb}Mi"


def quota_var(quota: Quota | None) -> dict[str, Any] | None:
    """The module's ``quota``, in Kubernetes quantities."""
    if quota is None:
        return None
    return {
        "cpu": _cpu(quota.cpu),
        "memory": _memory(quota.memory_mb),
        "gpus": quota.gpus,
        "jobs": quota.jobs,
        "pods": quota.pods,
    }


def limits_var(limits: Limits | None) -> dict[str, Any] | None:
    if limits is None:
        return None
    return {
        "default_cpu": _cpu(limits.default_cpu),
        "default_memory": _memory(limits.default_memory_mb),
        "max_cpu": _cpu(limits.max_cpu),
        "max_memory": _memory(limits.max_memory_mb),
    }


def subjects(runners: list[str]) -> list[dict[str, Any]]:
    """The module's ``runners``: user:NAME, group:NAME, serviceaccount:NAMESPACE/NAME."""
    out = []
    for runner in runners:
        prefix, _, name = runner.partition(":")
        namespace = None
        if prefix == "serviceaccount":
            namespace, _, name = name.partition("/")
        out.append({"kind": SUBJECT_KINDS[prefix], "name": name, "namespace": namespace})
    return out


class KubernetesKind(Kind[KubernetesConfig]):
    name = "kubernetes"
    label = "Kubernetes"
    summary = "an existing Kubernetes cluster (EKS, AKS, on-premises): each job a Kubernetes Job"
    config_model = KubernetesConfig
    root = NAMESPACE_ROOT
    capabilities = Capabilities(gpu=True, spot=True, machine_types=True)
    backend_path = "cfw.backends.kubernetes.backend:KubernetesBackend"
    translate_path = "cfw.backends.kubernetes.translate:translate"
    extra = "kubernetes"
    default_jobs = 100

    def preflight(self, config: KubernetesConfig, environ: Mapping[str, str]) -> None:
        """Reach the cluster and check, with access reviews, that you may do what `up` (or,
        with create_namespace: false, a run) needs; name every permission missing."""
        from cfw.backends.kubernetes import client, cloud

        cloud.check_access(client.connect(config, environ), config)

    def terraform_env(self, config: KubernetesConfig, environ: Mapping[str, str]) -> dict[str, str]:
        """The kubernetes provider reads the kubeconfig kubectl would (KUBE_CONFIG_PATHS)."""
        if not config.create_namespace:
            return {}
        return {"KUBE_CONFIG_PATHS": os.pathsep.join(str(p) for p in kubeconfig_paths(environ))}

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: KubernetesConfig) -> RootSpec:
        return NAMESPACE_ROOT if config.create_namespace else EXISTING_ROOT

    def tfvars(self, config: KubernetesConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        common = {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": ident.labels(config.labels),
            "namespace": config.namespace,
            "jobs_service_account": config.jobs_service_account,
        }
        if not config.create_namespace:
            return common
        return {
            **common,
            "context": config.context,
            "jobs_service_account_annotations": dict(config.service_account_annotations),
            "runner_service_account": RUNNER_SERVICE_ACCOUNT,
            "runners": subjects(config.runners),
            "pod_security_level": config.pod_security,
            "quota": quota_var(config.quota),
            "limits": limits_var(config.limits),
        }

    def output_placeholders(
        self, config: KubernetesConfig, ident: Identity | None
    ) -> dict[str, Any]:
        out = {"namespace": config.namespace, "jobs_service_account": config.jobs_service_account}
        if config.create_namespace:
            out["runner_service_account"] = RUNNER_SERVICE_ACCOUNT
        return out

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: KubernetesConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        from cfw.backends.kubernetes.storage import storage_spec

        return storage_spec(config, environ)

    def price(self, spec: JobSpec, ctx: EnvContext[KubernetesConfig]) -> JobPrice:
        """No price: the cluster's node prices are its owner's (the job's line says so)."""
        from cfw.backends.kubernetes import price

        return price.job_price(spec, ctx)

    # -- the guard: heartbeats as ConfigMaps, Jobs by the environment's label ---------------
    def heartbeat_store(self, ctx: EnvContext[KubernetesConfig], environ: Mapping[str, str]):
        adapter = self.guard_adapter(ctx, environ)
        return adapter.store, adapter.prefix

    def guard_adapter(self, ctx: EnvContext[KubernetesConfig], environ: Mapping[str, str]):
        from cfw.backends._kube.guard import KubeGuard
        from cfw.backends.kubernetes import client

        namespace = ctx.outputs.get("namespace") or ctx.config.namespace
        return KubeGuard(client.connect(ctx.config, environ), namespace, ctx.env_id, self.label)

    def status_details(
        self, config: KubernetesConfig, outputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The environment's Jobs by state, and the nodes each pool selects (one list of
        each), or that you may not list nodes."""
        from cfw.backends.kubernetes import client, cloud

        return cloud.status_details(client.connect(config), config, outputs)

    # -- teardown ---------------------------------------------------------------------------
    def before_destroy(
        self, config: KubernetesConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """Delete the environment's Jobs and run Secrets (a crashed run's too), by label."""
        env_id = outputs.get("cfw_id")
        if not env_id:
            return
        from cfw.backends.kubernetes import client, cloud

        namespace = str(outputs.get("namespace") or config.namespace)
        cloud.cleanup(client.connect(config, environ), namespace, str(env_id))

    def leftovers(
        self,
        config: KubernetesConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        from cfw.backends.kubernetes import client, cloud

        namespace = str(outputs.get("namespace") or config.namespace)
        return cloud.safe_leftovers(
            lambda: client.connect(config, environ), config, ident.env_id, namespace
        )


KIND = KubernetesKind()

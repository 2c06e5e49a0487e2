"""Config of a `kubernetes` environment: which cluster (a kubeconfig context), the namespace
and what `up` makes in it, where files go, and the node pools jobs may be placed on."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cfw.backends.kubernetes.pools import NodePool, label_value, qualified_name
from cfw.core import checks
from cfw.core.config import Duration, EnvConfig, Model

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# a kubeconfig context name: EKS names them by ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME)
CONTEXT_RE = re.compile(r"^[^\s\x00-\x1f]{1,253}$")
SUBJECT_RE = re.compile(r"^(user|group):\S+$|^serviceaccount:[a-z0-9-]{1,63}/[a-z0-9.-]{1,253}$")
STORAGE_RE = re.compile(r"^(s3|gs|gcs|az)://[^/\s]+(/\S*)?$")
# the storage plugin Snakemake uses for each scheme
PROVIDERS = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure"}
# what only makes sense when `up` creates the namespace (Terraform sets it)
CREATED_ONLY = ("service_account_annotations", "runners", "quota", "limits")


def dns_label(value: str) -> str:
    if not DNS_LABEL_RE.match(value):
        raise ValueError(
            "expected a DNS label: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


class KubernetesStorage(Model):
    """Where Snakemake keeps sources and files: any bucket its storage plugins reach."""

    prefix: str = Field(
        ..., description="s3://BUCKET[/PATH], gcs://BUCKET[/PATH] (or gs://), az://CONTAINER[/PATH]"
    )
    credentials: Literal["secret", "workload-identity"] = Field(
        "secret",
        description="secret: this machine's storage credentials reach jobs in a Kubernetes "
        "Secret per run; workload-identity: jobs get none, their service account's cloud "
        "identity reaches the bucket (IRSA, Azure or GKE Workload Identity)",
    )
    endpoint_url: str | None = Field(
        None, description="s3: an S3-compatible endpoint (MinIO, Ceph; default AWS_ENDPOINT_URL)"
    )
    region: str | None = Field(None, description="s3: the bucket's region (default AWS_REGION)")
    project: str | None = Field(
        None, description="gcs: the project billed for requests (default GOOGLE_CLOUD_PROJECT)"
    )
    account_name: str | None = Field(
        None, description="az: the storage account (default AZURE_STORAGE_ACCOUNT)"
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not STORAGE_RE.match(value):
            raise ValueError(
                "expected s3://BUCKET[/PATH], gcs://BUCKET[/PATH] or az://CONTAINER[/PATH]"
            )
        return value.rstrip("/")

    @property
    def scheme(self) -> str:
        return self.prefix.split("://", 1)[0]

    @property
    def provider(self) -> str:
        return PROVIDERS[self.scheme]

    @model_validator(mode="after")
    def _settings_of_the_scheme(self) -> KubernetesStorage:
        own = {"s3": ("endpoint_url", "region"), "gcs": ("project",), "azure": ("account_name",)}
        for provider, fields in own.items():
            for name in fields:
                if getattr(self, name) is not None and self.provider != provider:
                    raise ValueError(f"{name} applies to {provider} storage only")
        return self


class Quota(Model):
    """A ResourceQuota of the namespace: what all its pods together may request."""

    cpu: float | None = Field(None, gt=0, description="total CPU requests")
    memory_mb: int | None = Field(None, ge=1, description="total memory requests (MiB)")
    gpus: int | None = Field(None, ge=0, description="total GPUs (nvidia.com/gpu)")
    jobs: int | None = Field(None, ge=1, description="Jobs that may exist at once")
    pods: int | None = Field(None, ge=1, description="pods that may exist at once")


class Limits(Model):
    """A LimitRange of the namespace: defaults and maximums of one container."""

    default_cpu: float | None = Field(None, gt=0, description="limit of containers that set none")
    default_memory_mb: int | None = Field(None, ge=1, description="the same for memory (MiB)")
    max_cpu: float | None = Field(None, gt=0, description="the most one container may ask for")
    max_memory_mb: int | None = Field(None, ge=1, description="the same for memory (MiB)")


class KubernetesConfig(EnvConfig):
    kind: Literal["kubernetes"] = "kubernetes"
    context: str | None = Field(
        None, description="kubeconfig context (default: the current one); KUBECONFIG is honoured"
    )
    namespace: str = Field("cfw-jobs", description="namespace the jobs run in")
    create_namespace: bool = Field(
        True,
        description="`cfw up` creates the namespace, service accounts and Role with Terraform; "
        "false: they exist, and cfw only checks that you may run jobs there",
    )
    service_account: str | None = Field(
        None, description="service account jobs run as (default: cfw-jobs, or default)"
    )
    service_account_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="annotations of the jobs' service account, for workload identity: "
        "eks.amazonaws.com/role-arn, azure.workload.identity/client-id, "
        "iam.gke.io/gcp-service-account",
    )
    runners: list[str] = Field(
        default_factory=list,
        description="who may run workflows in the namespace (the runner Role): user:NAME, "
        "group:NAME, serviceaccount:NAMESPACE/NAME (the cfw-runner service account always)",
    )
    quota: Quota | None = Field(None, description="a ResourceQuota for the namespace")
    limits: Limits | None = Field(None, description="a LimitRange for the namespace")
    pod_security: Literal["privileged", "baseline", "restricted"] = Field(
        "baseline",
        description="the namespace's Pod Security level (a created namespace enforces it; jobs "
        "are made to meet it); restricted needs an image that runs as a non-root user",
    )
    storage: KubernetesStorage
    node_pools: list[NodePool] = Field(
        default_factory=list,
        description="the nodes jobs may be placed on; none: wherever the scheduler puts them",
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets in the namespace for a private registry"
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict,
        description='extra labels of every job\'s pod (azure.workload.identity/use: "true" is '
        "added when the service account has an Azure workload identity annotation)",
    )
    finished_job_ttl: Duration = Field(
        timedelta(hours=1), description="Kubernetes deletes a finished Job after this long"
    )
    default_mem_mb: int = Field(
        1024,
        ge=16,
        le=checks.MAX_MEM_MB,
        description="memory request/limit of a job whose rule sets no mem_mb",
    )

    @field_validator("context")
    @classmethod
    def _context(cls, value: str | None) -> str | None:
        if value is not None and not CONTEXT_RE.match(value):
            raise ValueError("expected a kubeconfig context name (no spaces, at most 253)")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        dns_label(value)
        if value.startswith("kube-"):
            raise ValueError("the kube- namespaces belong to the cluster; choose another one")
        return value

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, value: str | None) -> str | None:
        return value if value is None else dns_label(value)

    @field_validator("image_pull_secrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", name):
                raise ValueError(f"{name!r} is not a Secret name")
        return value

    @field_validator("service_account_annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            qualified_name(key, "annotation")
        return value

    @field_validator("pod_labels")
    @classmethod
    def _pod_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            qualified_name(key, "label")
            label_value(label, key)
            if key.startswith("cfw-") or key == "app.kubernetes.io/managed-by":
                raise ValueError(f"label {key!r} is cfw's own")
        return value

    @field_validator("runners")
    @classmethod
    def _runners(cls, value: list[str]) -> list[str]:
        for subject in value:
            if not SUBJECT_RE.match(subject):
                raise ValueError(
                    f"{subject!r}: expected user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesConfig:
        if self.create_namespace and self.namespace == "default":
            raise ValueError(
                "namespace 'default' exists in every cluster: choose another one to create, "
                "or set create_namespace: false"
            )
        if self.create_namespace and self.service_account in ("default", "cfw-runner"):
            raise ValueError(
                f"service_account {self.service_account!r} is not one `cfw up` can create for "
                "the jobs (default comes with every namespace; cfw-runner is the runners')"
            )
        if not self.create_namespace:
            given = [f for f in CREATED_ONLY if getattr(self, f)]
            if given:
                raise ValueError(
                    f"{given[0]} is set by `cfw up` when it creates the namespace; with "
                    "create_namespace: false the cluster's admins set it"
                )
        names = [pool.name for pool in self.node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two node pools are named {dupes[0]!r}: list each pool once")
        return self

    @property
    def jobs_service_account(self) -> str:
        return self.service_account or ("cfw-jobs" if self.create_namespace else "default")

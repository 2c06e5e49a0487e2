"""Config of a `gke` environment, and the node pools it describes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cfw.core import checks
from cfw.core.config import Duration, EnvConfig, Model

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
MACHINE_TYPE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]*[a-z0-9]$")
DNS_LABEL_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MEMBER_RE = re.compile(r"^(user|group|serviceAccount):[^@\s]+@[^@\s]+$")
POOL_NAME_MAX = 40  # GKE's limit on node pool names


def _machine_type(value: str) -> str:
    if not MACHINE_TYPE_RE.match(value):
        raise ValueError(
            f"{checks.shorten(value)} is not a Compute Engine machine type such as "
            "e2-standard-4 or n2-highmem-8"
        )
    return value


class GpuPool(Model):
    """A node pool whose nodes carry GPUs (tainted: only jobs that ask for a GPU go there)."""

    accelerator: str = Field(..., description="accelerator type, e.g. nvidia-l4, nvidia-tesla-t4")
    count: int = Field(1, ge=1, le=16, description="GPUs per node")
    machine_type: str = Field(..., description="machine type of the nodes, e.g. g2-standard-8")
    max_nodes: int = Field(2, ge=1, le=1000, description="autoscaling maximum (minimum is 0)")
    spot: bool = Field(False, description="Spot VMs (preemptible) instead of on-demand")
    zones: list[str] = Field(
        default_factory=list, description="zones with this accelerator (default: the cluster's)"
    )
    driver_version: Literal["DEFAULT", "LATEST"] = Field(
        "DEFAULT", description="NVIDIA driver GKE installs on the nodes"
    )

    @field_validator("accelerator")
    @classmethod
    def _accelerator(cls, value: str) -> str:
        if not re.match(r"^nvidia-[a-z0-9-]+$", value):
            raise ValueError("expected a GKE accelerator type such as nvidia-l4 or nvidia-tesla-t4")
        return value

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, value: str) -> str:
        return _machine_type(value)


class GkeConfig(EnvConfig):
    kind: Literal["gke"] = "gke"
    project: str | None = Field(
        None, description="GCP project id (default: --project, else GOOGLE_CLOUD_PROJECT)"
    )
    region: str = Field("us-central1", description="region of the network, bucket and cluster")
    zone: str | None = Field(
        None, description="make a zonal cluster in this zone (cheaper; default: regional)"
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(
        "REGULAR", description="GKE release channel"
    )
    machine_types: list[str] = Field(
        default_factory=lambda: ["e2-standard-4", "e2-standard-16", "e2-highmem-8"],
        description="one autoscaling job pool (min 0 nodes) per machine type",
    )
    spot_pools: bool = Field(True, description="also make a Spot pool per machine type")
    max_nodes: int = Field(10, ge=1, le=1000, description="autoscaling maximum of each job pool")
    disk_size_gb: int = Field(100, ge=20, le=65536, description="boot disk of job nodes")
    disk_type: Literal["pd-balanced", "pd-standard", "pd-ssd"] = Field(
        "pd-balanced", description="boot disk type of job nodes"
    )
    system_machine_type: str = Field(
        "e2-standard-2", description="machine type of the small system pool (one node)"
    )
    gpu_pools: list[GpuPool] = Field(default_factory=list, description="optional GPU pools")
    namespace: str = Field("cfw-jobs", description="Kubernetes namespace jobs run in")
    service_account: str = Field(
        "cfw-jobs", description="Kubernetes service account jobs run as (Workload Identity)"
    )
    bucket: str | None = Field(
        None, description="name of the GCS bucket to create (default: cfw-<env id>-<project>)"
    )
    bucket_retention_days: int = Field(
        30, ge=1, le=3650, description="objects are deleted this many days after creation"
    )
    authorized_networks: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="CIDR ranges allowed to reach the cluster's control plane",
    )
    runners: list[str] = Field(
        default_factory=list,
        description="Google identities (user:, group:, serviceAccount:) who run workflows here: "
        "the runner Role in the namespace and object access to the bucket (they need "
        "Kubernetes Engine Cluster Viewer on the project)",
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

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and not PROJECT_RE.match(value):
            raise ValueError(
                "expected a GCP project id: 6-30 lowercase letters, digits or '-', "
                "starting with a letter"
            )
        return value

    @field_validator("machine_types")
    @classmethod
    def _machine_types(cls, value: list[str]) -> list[str]:
        for item in value:
            _machine_type(item)
        if len(set(value)) != len(value):
            raise ValueError("each machine type may appear once")
        return value

    @field_validator("system_machine_type")
    @classmethod
    def _system_type(cls, value: str) -> str:
        return _machine_type(value)

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL_RE.match(value):
            raise ValueError("expected a DNS label: lowercase letters, digits and '-' (max 63)")
        return value

    @field_validator("authorized_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            checks.check_cidr(cidr)
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return checks.check_region("gcp", value)

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z]+-[a-z]+\d+-[a-z]$", value):
            raise ValueError("expected a zone such as europe-west4-a")
        return value

    @field_validator("runners")
    @classmethod
    def _runners(cls, value: list[str]) -> list[str]:
        for member in value:
            if not MEMBER_RE.match(member):
                raise ValueError(
                    f"{checks.shorten(member)}: expected user:EMAIL, group:EMAIL or "
                    "serviceAccount:EMAIL"
                )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", value):
            raise ValueError("expected 3-63 lowercase letters, digits, '-' or '_'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _spot_switch(cls, data: Any) -> Any:
        """`spot: true|false` (before `spot:` held the retry settings) is spot_pools."""
        if isinstance(data, dict) and isinstance(data.get("spot"), bool):
            data = {**data, "spot_pools": data["spot"]}
            del data["spot"]
        return data

    @model_validator(mode="after")
    def _pools(self) -> GkeConfig:
        if not self.machine_types and not self.gpu_pools:
            raise ValueError("set at least one of machine_types and gpu_pools: jobs need a pool")
        if self.zone and not self.zone.startswith(self.region + "-"):
            raise ValueError(f"zone {self.zone!r} is not in region {self.region!r}")
        names = [pool.name for pool in node_pools(self)]
        for name in names:
            if len(name) > POOL_NAME_MAX:
                raise ValueError(f"node pool name {name!r} is longer than {POOL_NAME_MAX}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two pools would be named {dupes[0]!r}: list each pool once")
        return self

    @property
    def location(self) -> str:
        return self.zone or self.region


@dataclass(frozen=True)
class Pool:
    """One job node pool, as the module creates it and the backend selects it."""

    name: str
    machine_type: str
    spot: bool
    max_nodes: int
    accelerator: str | None = None
    accelerator_count: int = 0
    zones: tuple[str, ...] = ()
    driver_version: str = "DEFAULT"


def _short_accelerator(accelerator: str) -> str:
    return accelerator.removeprefix("nvidia-").removeprefix("tesla-")


def node_pools(config: GkeConfig) -> list[Pool]:
    """Every job pool the config asks for (the system pool is not one of them)."""
    pools: list[Pool] = []
    for machine_type in config.machine_types:
        pools.append(Pool(f"od-{machine_type}", machine_type, False, config.max_nodes))
        if config.spot_pools:
            pools.append(Pool(f"spot-{machine_type}", machine_type, True, config.max_nodes))
    for gpu in config.gpu_pools:
        prefix = "spot-gpu" if gpu.spot else "gpu"
        pools.append(
            Pool(
                name=f"{prefix}-{_short_accelerator(gpu.accelerator)}-{gpu.machine_type}",
                machine_type=gpu.machine_type,
                spot=gpu.spot,
                max_nodes=gpu.max_nodes,
                accelerator=gpu.accelerator,
                accelerator_count=gpu.count,
                zones=tuple(gpu.zones),
                driver_version=gpu.driver_version,
            )
        )
    return pools

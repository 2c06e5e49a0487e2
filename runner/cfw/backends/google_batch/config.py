"""Config of a `google-batch` environment."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cfw.backends._google import machines
from cfw.backends._google.gpus import canonical, short_names
from cfw.core import checks
from cfw.core.config import EnvConfig

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
IMAGE_ALIASES = ("batch-debian", "batch-cos", "batch-centos", "batch-hpc-rocky")


class GoogleBatchConfig(EnvConfig):
    kind: Literal["google-batch"] = "google-batch"
    project: str | None = Field(
        None, description="Google Cloud project id (default: --project or GOOGLE_CLOUD_PROJECT)"
    )
    region: str = Field("us-central1", description="region of the jobs, bucket and network")
    zones: list[str] = Field(
        default_factory=list, description="zones of the region jobs may use (default: any)"
    )
    machine_type: str | None = Field(
        None,
        description="machine type or family prefix (n2, n1-highmem) for rules that set none; "
        "default: the cheapest general-purpose type that fits threads and mem_mb",
    )
    gpu_model: str = Field(
        "nvidia-tesla-t4", description="GPU model of rules that ask for gpu/nvidia_gpu only"
    )
    install_gpu_drivers: bool = Field(True, description="let Batch install the GPU driver")
    preemption_retries: int = Field(
        3, ge=0, le=10, description="retries of a preemptible (spot) job whose VM was preempted"
    )
    boot_disk_gb: int = Field(
        30, ge=10, le=65536, description="boot disk for the OS and the image; disk_mb is added"
    )
    boot_disk_type: Literal["pd-balanced", "pd-standard", "pd-ssd"] = Field(
        "pd-balanced", description="boot disk type"
    )
    vm_image: str = Field(
        "batch-debian",
        description="VM image: batch-debian, batch-cos, batch-centos, batch-hpc-rocky or an "
        "image path projects/P/global/images/...",
    )
    external_ip: bool = Field(
        False, description="give job VMs external IPs (default: none; Cloud NAT for egress)"
    )
    bucket: str | None = Field(None, description="name of the bucket to create (default: derived)")
    bucket_retention_days: int = Field(
        30, ge=1, le=3650, description="objects in the bucket are deleted after this many days"
    )
    data_buckets: list[str] = Field(
        default_factory=list, description="existing buckets with input data the jobs may read"
    )
    subnet_cidr: str = Field("10.64.0.0/20", description="IP range of the job VMs' subnet")
    allow_ssh_from_iap: bool = Field(
        False, description="allow SSH to job VMs through Identity-Aware Proxy (debugging)"
    )

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and not PROJECT_RE.match(value):
            raise ValueError(
                "expected a project id: 6-30 lowercase letters, digits or '-', starting "
                "with a letter"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return checks.check_region("gcp", value)

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, value: str | None) -> str | None:
        if value is not None:
            machines.check(value)
        return value

    @field_validator("gpu_model")
    @classmethod
    def _gpu_model(cls, value: str) -> str:
        if canonical(value) not in machines.GPU_MODELS:
            raise ValueError(
                f"{value!r} is not a GPU model of Google Batch: use one of "
                f"{', '.join(machines.GPU_MODELS)} (or {short_names()})"
            )
        return value

    @field_validator("bucket", "data_buckets")
    @classmethod
    def _buckets(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in [value] if isinstance(value, str) else value or []:
            if not BUCKET_RE.match(name) or "goog" in name:
                raise ValueError(
                    f"{name!r} is not a bucket name: 3-63 lowercase letters, digits, '-', "
                    "'_' or '.', not containing 'goog' (give the name, not gs://...)"
                )
        return value

    @field_validator("vm_image")
    @classmethod
    def _vm_image(cls, value: str) -> str:
        if value not in IMAGE_ALIASES and not value.startswith("projects/"):
            raise ValueError(f"expected one of {', '.join(IMAGE_ALIASES)} or projects/...")
        return value

    @field_validator("subnet_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value)
        except ValueError as exc:
            raise ValueError("expected an IPv4 range such as 10.64.0.0/20") from exc
        if net.version != 4 or not net.is_private or net.prefixlen > 29:
            raise ValueError("expected a private IPv4 range of /29 or larger, e.g. 10.64.0.0/20")
        return value

    @model_validator(mode="after")
    def _zones_in_region(self) -> GoogleBatchConfig:
        for zone in self.zones:
            if not re.match(rf"^{re.escape(self.region)}-[a-z]$", zone):
                raise ValueError(
                    f"zone {zone!r} is not a zone of region {self.region} "
                    f"(expected {self.region}-a, {self.region}-b, ...)"
                )
        return self

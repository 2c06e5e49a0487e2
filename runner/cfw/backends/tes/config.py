"""Config of a `tes` environment: a Funnel server cfw provisions on AWS, or an existing TES URL."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationInfo, field_validator, model_validator

from cfw.core import checks
from cfw.core.config import EnvConfig, Model

_USER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
# settings that only make sense when cfw provisions the server
PROVISIONING_FIELDS = (
    "allowed_cidrs",
    "instance_type",
    "ami_id",
    "vpc_id",
    "subnet_ids",
    "funnel_version",
    "users",
    "credentials_store",
    "batch",
    "object_expiration_days",
)


class FunnelBatch(Model):
    """Funnel's AWS Batch compute backend."""

    max_vcpus: int = Field(64, ge=1, le=10000, description="upper bound of the compute environment")
    instance_types: list[str] = Field(
        default_factory=lambda: ["optimal"],
        description="instance types or families AWS Batch may start (optimal: AWS picks)",
    )
    spot: bool = Field(False, description="run Batch instances on Spot capacity")
    worker_image: str = Field(
        "quay.io/ohsu-comp-bio/funnel:0.12.2",
        description="image of Funnel's worker job; it needs a docker CLI (tasks run through "
        "the host's Docker socket)",
    )

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one instance type or family, or optimal")
        for item in value:
            if item != "optimal":
                try:
                    checks.check_ec2_type(item, families=True)
                except ValueError as exc:
                    raise ValueError(f"{checks.shorten(item)}: {exc} (or optimal)") from None
        return value


class TesStorage(Model):
    """Where Snakemake keeps sources and files (an S3 prefix)."""

    prefix: str | None = Field(
        None, description="s3://BUCKET[/PATH]; required with url, else the provisioned bucket"
    )
    endpoint_url: str | None = Field(
        None, description="endpoint of an S3-compatible service (default: AWS_ENDPOINT_URL)"
    )
    pass_credentials: bool = Field(
        False,
        description="send the S3 credentials to tasks as environment variables; TES has no "
        "secrets, so anyone who can read tasks on the server sees them. Off: the compute must "
        "reach the bucket by its own role",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("s3://") or len(value.rstrip("/")) <= 5):
            raise ValueError("expected s3://BUCKET[/PATH]")
        return value


class TesConfig(EnvConfig):
    kind: Literal["tes"] = "tes"
    url: str | None = Field(
        None,
        description="an existing TES server (Funnel, TESK, TES on Azure): nothing is provisioned",
    )
    region: str | None = Field(None, description="AWS region (default: AWS_REGION)")
    allowed_cidrs: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="networks that may reach the provisioned server, e.g. [203.0.113.7/32]",
    )
    instance_type: str = Field("t3.small", description="EC2 instance type of the Funnel server")
    ami_id: str | None = Field(None, description="AMI of the server (default: Amazon Linux 2023)")
    vpc_id: str | None = Field(None, description="VPC (default: the region's default VPC)")
    subnet_ids: list[str] = Field(default_factory=list, description="subnets (default: the VPC's)")
    funnel_version: str = Field("0.12.2", description="Funnel release the server runs")
    users: list[str] = Field(
        default_factory=lambda: ["cfw"],
        description="basic-auth users; each gets a generated password in the credentials store",
    )
    credentials_store: Literal["secretsmanager", "ssm"] = Field(
        "secretsmanager", description="where the generated passwords are kept"
    )
    batch: FunnelBatch = Field(default_factory=FunnelBatch)
    object_expiration_days: int | None = Field(
        None, ge=1, le=36500, description="delete run data from the bucket after this many days"
    )
    storage: TesStorage = Field(default_factory=TesStorage)
    ca_bundle: str | None = Field(
        None, description="with url: a CA bundle (PEM file) that signs the server's certificate"
    )
    page_size: int = Field(256, ge=1, le=2047, description="tasks per ListTasks page")
    zones: list[str] = Field(default_factory=list, description="TES resources.zones of every task")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("expected an http:// or https:// URL of the TES server")
        if parsed.username or parsed.password:
            raise ValueError(
                "put no credentials in the URL; set TES_TOKEN or "
                "FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD"
            )
        return value.rstrip("/")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_region("aws", value)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return checks.check_ec2_type(value)

    @field_validator("ami_id")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_aws_id(value, "ami")

    @field_validator("vpc_id")
    @classmethod
    def _vpc(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_aws_id(value, "vpc")

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            checks.check_aws_id(subnet, "subnet")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and not info.data.get("url"):
            raise ValueError(
                "set the networks that may reach the Funnel server, e.g. "
                "[203.0.113.7/32] (or url: for an existing server)"
            )
        for cidr in value:
            checks.check_cidr(cidr, version=None)
        return value

    @field_validator("users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one user")
        for user in value:
            if not _USER_RE.match(user):
                raise ValueError(
                    f"user {checks.shorten(user)}: expected lowercase letters, digits, '_' or '-'"
                )
        if len(set(value)) != len(value):
            raise ValueError("each user may appear once")
        return value

    @field_validator("funnel_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION_RE.match(value):
            raise ValueError("expected a Funnel release such as 0.12.2")
        return value

    @model_validator(mode="after")
    def _mode(self) -> TesConfig:
        if self.url:
            fields = type(self).model_fields
            given = [
                f
                for f in PROVISIONING_FIELDS
                if getattr(self, f) != fields[f].get_default(call_default_factory=True)
            ]
            if given:
                raise ValueError(
                    f"url means an existing server; {', '.join(given)} apply only "
                    "when cfw provisions one (remove them, or remove url)"
                )
            if not self.storage.prefix:
                raise ValueError(
                    "with url, set storage.prefix: s3://BUCKET[/PATH] (where jobs "
                    "read and write files)"
                )
        else:
            if not self.allowed_cidrs:
                raise ValueError(
                    "set allowed_cidrs: the networks that may reach the Funnel "
                    "server, e.g. [203.0.113.7/32] (or url: for an existing server)"
                )
            if self.storage.prefix:
                raise ValueError(
                    "storage.prefix applies with url only; a provisioned server gets its own bucket"
                )
            if self.ca_bundle:
                raise ValueError(
                    "ca_bundle applies with url only; cfw pins the certificate of "
                    "a server it provisions"
                )
        return self

    @property
    def provision(self) -> bool:
        return self.url is None

"""Config of a `tibanna` environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cfw.core import checks
from cfw.core.config import EnvConfig

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
USERGROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,37}$")


class TibannaConfig(EnvConfig):
    kind: Literal["tibanna"] = "tibanna"
    region: str | None = Field(
        None, description="AWS region (default: AWS_REGION or AWS_DEFAULT_REGION)"
    )
    usergroup: str | None = Field(
        None,
        description="Tibanna user group: the suffix of every name the unicorn gets "
        "(default: the environment's unique id, so two environments never collide)",
    )
    data_bucket: str | None = Field(
        None, description="bucket created for job inputs and outputs (default: cfw-<id>-data)"
    )
    log_bucket: str | None = Field(
        None, description="bucket created for Tibanna's job logs (default: cfw-<id>-logs)"
    )
    extra_buckets: list[str] = Field(
        default_factory=list,
        description="existing buckets jobs may read and write (like deploy_unicorn -b); "
        "they are not created, changed or deleted",
    )
    cost_updater: bool = Field(
        False, description="also deploy Tibanna's cost-updater state machine"
    )
    create_dynamodb_table: Literal["auto"] | bool = Field(
        "auto",
        description="create the tibanna-master job table, which Tibanna shares among all "
        "unicorns of an account and region: auto (create it unless it exists and another "
        "environment or `tibanna deploy_unicorn` made it), true or false",
    )
    log_retention_days: int = Field(
        30, description="retention of the Lambdas' CloudWatch logs (0: forever)"
    )
    log_expiration_days: int = Field(
        0,
        ge=0,
        le=36500,
        description="delete job logs from the log bucket after this many days (0: keep)",
    )
    default_mem_mb: int = Field(
        2048, ge=256, le=checks.MAX_MEM_MB, description="memory of a job whose rule sets no mem_mb"
    )
    default_ebs_gb: int = Field(
        10, ge=1, le=16000, description="EBS size of a job with neither disk_mb nor known inputs"
    )
    ebs_input_multiplier: float = Field(
        3.0,
        gt=0,
        le=1000,
        description="EBS size when disk_mb is unset: this many times the input size",
    )
    root_ebs_gb: int = Field(10, ge=8, le=16000, description="root volume of job instances")
    spot_fallback: bool = Field(
        True,
        description="a preemptible job that finds no spot capacity retries on demand "
        "(behavior_on_capacity_limit retry_without_spot), else it waits",
    )
    on_capacity_limit: Literal["fail", "wait_and_retry"] = Field(
        "wait_and_retry", description="what an on-demand job does when EC2 has no capacity"
    )
    shutdown_min: str = Field(
        "now", description="minutes an instance stays up after its job ('now': terminate at once)"
    )
    precommand: str | None = Field(
        None, description="shell commands run in the container before the job's command"
    )
    subnets: list[str] = Field(default_factory=list, description="subnets for job instances")
    security_group: str | None = Field(None, description="security group of job instances")
    key_name: str | None = Field(None, description="EC2 key pair for ssh into job instances")
    ami_id: str | None = Field(None, description="AMI of job instances (default: Tibanna's)")
    pass_env: list[str] = Field(
        default_factory=list,
        description="extra environment variables jobs get (never credentials: Tibanna keeps "
        "a job's environment in plain text in the log bucket)",
    )
    lambda_dir: Path | None = Field(
        None,
        description=(
            "where the Lambda zips are built (default: lambda/ of the rendered root module, "
            "referred to relatively; a lambda_dir is referred to by its absolute path)"
        ),
    )
    awsf_repo: str = Field("4dn-dcic/tibanna", description="repository of Tibanna's awsf3 scripts")
    awsf_branch: str = Field("master", description="branch of Tibanna's awsf3 scripts")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_region("aws", value)

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            checks.check_aws_id(subnet, "subnet")
        return value

    @field_validator("security_group")
    @classmethod
    def _security_group(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_aws_id(value, "sg")

    @field_validator("ami_id")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_aws_id(value, "ami")

    @field_validator("usergroup")
    @classmethod
    def _usergroup(cls, value: str | None) -> str | None:
        if value is not None and not USERGROUP_RE.match(value):
            raise ValueError("expected 1-38 letters, digits, '_' or '-'")
        return value

    @field_validator("data_bucket", "log_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not BUCKET_RE.match(value) or ".." in value):
            raise ValueError("expected an S3 bucket name: 3-63 lowercase letters, digits, '.', '-'")
        return value

    @field_validator("extra_buckets")
    @classmethod
    def _buckets(cls, value: list[str]) -> list[str]:
        for bucket in value:
            if not BUCKET_RE.match(bucket):
                raise ValueError(
                    f"{checks.shorten(bucket)} is not an S3 bucket name "
                    "(give names, not s3:// URLs)"
                )
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        allowed = (
            0,
            1,
            3,
            5,
            7,
            14,
            30,
            60,
            90,
            120,
            150,
            180,
            365,
            400,
            545,
            731,
            1096,
            1827,
            2192,
            2557,
            2922,
            3288,
            3653,
        )
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return value

    @field_validator("shutdown_min")
    @classmethod
    def _shutdown(cls, value: str) -> str:
        if value != "now" and not (value.isdigit() and int(value) <= 100000):
            raise ValueError("expected 'now' or a number of minutes")
        return value

    @model_validator(mode="after")
    def _distinct_buckets(self) -> TibannaConfig:
        if self.data_bucket and self.data_bucket == self.log_bucket:
            raise ValueError("data_bucket and log_bucket must differ")
        return self

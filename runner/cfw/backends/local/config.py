"""Config of a `local` environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cfw.core.config import EnvConfig, Model


class LocalStorage(Model):
    provider: Literal["disk", "s3"] = Field(
        "disk", description="disk: a directory on this machine; s3: an S3 (or compatible) bucket"
    )
    root: Path | None = Field(
        None, description="disk: the storage root (default: the workflow directory)"
    )
    prefix: str | None = Field(None, description="s3: s3://bucket/prefix for sources and files")
    endpoint_url: str | None = Field(
        None, description="s3: endpoint of an S3-compatible service (default: AWS_ENDPOINT_URL)"
    )

    @model_validator(mode="after")
    def _check(self) -> LocalStorage:
        if self.provider == "s3":
            if not self.prefix or not self.prefix.startswith("s3://") or len(self.prefix) <= 5:
                raise ValueError("provider s3 needs prefix: s3://BUCKET[/PATH]")
            if self.root is not None:
                raise ValueError("root applies to provider disk only; use prefix for s3")
        elif self.prefix or self.endpoint_url:
            raise ValueError("prefix and endpoint_url apply to provider s3 only")
        return self


class LocalConfig(EnvConfig):
    kind: Literal["local"] = "local"
    storage: LocalStorage = Field(default_factory=LocalStorage)
    sandbox_root: Path | None = Field(
        None,
        description="where job sandboxes are made (default: a directory under the system temp)",
    )
    keep_sandboxes: Literal["never", "on-failure", "always"] = Field(
        "on-failure", description="keep a job's sandbox directory after it ends"
    )
    enforce_memory: bool = Field(
        True, description="stop a job whose processes use more than its mem_mb"
    )
    launcher: Literal["fork", "shell"] = Field(
        "fork",
        description="fork: run the job's `python -m snakemake` commands in forks of a "
        "preloaded interpreter (same argv, ~0.6 s less per command); shell: through bash",
    )
    pass_env: list[str] = Field(
        default_factory=list, description="extra environment variables jobs inherit"
    )

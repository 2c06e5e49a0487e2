"""The backend interface every kind implements, and the backend-neutral job description.

A backend turns a :class:`JobSpec` into its service's submission with a pure
``translate(spec, env)``, then submits, polls many jobs per call, cancels (idempotently)
and fetches logs. Core code never branches on a kind's name; it reads
:class:`Capabilities`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    """One Snakemake job, as every backend sees it."""

    name: str  # unique, DNS-1123-safe: cfw-<run id>-<jobid>-<rule>
    rule: str
    jobid: int
    run_id: str
    command: str  # what the remote node runs (Snakemake's format_job_exec)
    image: str
    threads: int = 1
    mem_mb: int | None = None
    disk_mb: int | None = None
    runtime: int | None = None  # minutes
    machine_type: str | None = None  # an exact type, or a family prefix
    gpu: int = 0
    gpu_model: str | None = None
    preemptible: bool = False
    env: tuple[str, ...] = ()  # names only; values travel as secrets at submit time
    attempt: int = 1
    wildcards: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # storage queries of the job's inputs
    input_size_mb: int = 0


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    reason: str | None = None  # why a job failed: OOMKilled, preempted, exit code 3, ...
    exit_code: int | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; core code and the executor ask these, never the kind name."""

    gpu: bool = False
    spot: bool = False
    secrets: bool = False  # env values travel in a secret store, not in the payload
    needs_up: bool = True  # jobs need a provisioned environment
    machine_types: bool = False  # honours machine_type
    env_is_secret: bool = True  # False where env vars are visible to others (TES)
    users: bool = False  # `cfw users` manages access
    local_outputs: bool = False  # outputs land in the workflow directory


@dataclass(frozen=True)
class StorageSpec:
    """How Snakemake reaches an environment's storage."""

    provider: str  # snakemake storage plugin name: cfw, s3, gcs, azure
    prefix: str
    args: tuple[str, ...] = ()  # extra CLI settings, never secrets
    env: Mapping[str, str] = field(default_factory=dict)  # credentials, passed as env

    @property
    def on_this_machine(self) -> bool:
        """cfw's own local-disk storage: files are already where the workflow is."""
        return self.provider == "cfw"

    def cli_args(self) -> list[str]:
        return [
            "--default-storage-provider",
            self.provider,
            "--default-storage-prefix",
            self.prefix,
            *self.args,
        ]

    def query(self, relative: str) -> str:
        return f"{self.prefix.rstrip('/')}/{relative}"


@dataclass
class EnvContext:
    """What a backend knows about the environment it submits to."""

    name: str
    kind: str
    config: Any  # the kind's validated config model
    outputs: Mapping[str, Any]  # Terraform outputs; placeholders before `up`
    env_id: str
    state_dir: Path
    run_id: str = ""
    explain: bool = False  # translate only, submit nothing

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "runs" / self.run_id


class Backend(ABC):
    """Submits, polls, cancels and reads logs of jobs for one environment."""

    capabilities: Capabilities = Capabilities()

    def __init__(self, ctx: EnvContext):
        self.ctx = ctx

    @staticmethod
    @abstractmethod
    def translate(spec: JobSpec, ctx: EnvContext) -> dict[str, Any]:
        """Pure: the exact payload the service's API would receive (secrets by reference)."""

    @abstractmethod
    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        """Submit one job; return its external id."""

    @abstractmethod
    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Status of many jobs with as few API calls as the service allows."""

    @abstractmethod
    def cancel(self, external_ids: Sequence[str]) -> None:
        """Cancel jobs; a job that is already gone is success."""

    @abstractmethod
    def logs(self, external_id: str) -> str:
        """The job's log text (best effort)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """End of run: release per-run resources (secrets, per-run jobs)."""


def aws_region(environ: Mapping[str, str]) -> str | None:
    """The AWS region the environment names, as boto3 and the aws provider read it."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")

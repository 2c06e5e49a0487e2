"""What every kind shares with the executor: the backend-neutral job, its states, what a
kind can give a job, where its files are, and the small interface of a running backend.

A kind (kind.py) turns a :class:`JobSpec` into its service's submission with a pure
translate; a :class:`Backend` then submits, polls many jobs per call, cancels
(idempotently) and fetches logs. Core code never branches on a kind's name; it reads
:class:`Capabilities`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from cfw.core.errors import UserError


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
    attempt: int = 1  # Snakemake's attempt (its --retries)
    preempted: int = 0  # times cfw resubmitted this attempt after a preemption
    # spot retries left, for a kind whose service retries a preempted job itself
    # (google-batch's maxRetryCount); None: the kind's own default
    spot_retries: int | None = None
    wildcards: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # storage queries of the job's inputs
    input_size_mb: int = 0

    @property
    def attempt_tag(self) -> str:
        """What makes each submission's name unique: the attempt, and how many times cfw
        resubmitted it after a preemption ("2", "2p1")."""
        return f"{self.attempt}p{self.preempted}" if self.preempted else str(self.attempt)


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # the machine was reclaimed (spot/preemptible capacity, a lost VM): not the job's
    # failure; the executor resubmits it (executor/retry.py)
    PREEMPTED = "preempted"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    reason: str | None = None  # why a job failed: OOMKilled, preempted, exit code 3, ...
    exit_code: int | None = None
    # PREEMPTED: how many times this submission was preempted (more than one where the
    # service retried it on spot itself, as google-batch does)
    preemptions: int = 1


@dataclass(frozen=True)
class Capabilities:
    """What a kind can give a job; core code and the executor ask these, never its name.

    A job that asks for what its kind cannot give is refused before translation when
    going without would break it (GPUs), and runs with a note when it is a preference
    (a machine type, spot capacity): see :func:`check_job` and :func:`ignored`.
    """

    gpu: bool = False  # jobs may ask for GPUs
    spot: bool = False  # `preemptible` gets spot/preemptible capacity
    machine_types: bool = False  # `machine_type` picks the machine
    needs_up: bool = True  # jobs need a provisioned environment
    containers: bool = True  # jobs run in the container image (not on this machine)
    users: bool = False  # `cfw users` manages who may use it
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


C = TypeVar("C")


@dataclass
class EnvContext(Generic[C]):
    """What a backend knows about the environment it submits to."""

    name: str
    kind: str
    config: C  # the kind's validated config model
    outputs: Mapping[str, Any]  # Terraform outputs; placeholders before `up`
    env_id: str
    state_dir: Path
    run_id: str = ""
    explain: bool = False  # translate only, submit nothing

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "runs" / self.run_id


class Backend(ABC, Generic[C]):
    """What a running job needs: submit, poll many at once, cancel, logs; one per run.

    The payload comes from the kind's pure translate (:meth:`Kind.translate`). A backend
    may also offer ``async wait_for_change(timeout)``, to wake the status loop early.
    """

    # the backend fails jobs that wait too long for capacity itself (pending_timeout);
    # otherwise the executor does (executor/pending.py)
    watches_pending: bool = False

    def __init__(self, ctx: EnvContext[C]):
        self.ctx = ctx

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

    def workdir(self, external_id: str) -> Path | None:
        """A finished job's working directory, where this machine can read it (a kept
        sandbox); None where the job ran elsewhere."""
        return None

    def close(self) -> None:
        """End of run: release per-run resources (secrets, per-run jobs)."""


def check_job(spec: JobSpec, caps: Capabilities, kind_label: str) -> None:
    """Refuse a job that asks for what the kind cannot give and cannot run without."""
    if spec.gpu and not caps.gpu:
        raise UserError(
            f"rule {spec.rule} asks for {spec.gpu} GPU(s); {kind_label} jobs get no GPUs",
            "run it on an environment whose kind has GPUs (gke, kubernetes, google-batch, "
            "azure-batch)",
        )


def ignored(spec: JobSpec, caps: Capabilities) -> list[str]:
    """The job's resources the kind cannot honour and runs without (preferences)."""
    out = []
    if spec.machine_type and not caps.machine_types:
        out.append(f"machine_type={spec.machine_type}")
    if spec.preemptible and not caps.spot:
        out.append("preemptible")
    return out

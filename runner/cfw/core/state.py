"""Working state of environments: ``.cfw/<name>/`` beside the workflow.

Holds the rendered root module, Terraform's local state, ``outputs.json``, the record of
when the environment came up and when it expires (``cfw.json``), and per-run records.
Everything is readable by the owner only. A lock (``.cfw/<name>.lock``, outside the
directory so that forgetting the environment cannot drop a held lock) keeps two
``up``/``down``/``run --teardown`` on one environment from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfw.core.errors import UserError

CFW_DIR = ".cfw"
META = "cfw.json"
OUTPUTS = "outputs.json"

# phases an environment goes through; `status` derives up / half-up / failed from them
PHASE_RENDERED = "rendered"
PHASE_APPLYING = "applying"
PHASE_UP = "up"
PHASE_FAILED = "failed"
PHASE_DESTROYING = "destroying"
PHASE_DESTROY_FAILED = "destroy-failed"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class Meta:
    name: str
    kind: str
    env_id: str
    phase: str
    created_at: str
    updated_at: str
    expires_at: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    cfw_version: str = ""
    resources: int = 0
    last_error: str | None = None


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file readable by the owner only, atomically (safe from several threads)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class EnvState:
    def __init__(self, project: Path, name: str):
        self.project = Path(project).resolve()
        self.name = name
        self.root = self.project / CFW_DIR
        self.dir = self.root / name
        self.lock_path = self.root / f"{name}.lock"

    # -- records ----------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.dir / META).exists()

    def meta(self) -> Meta | None:
        try:
            return Meta(**json.loads((self.dir / META).read_text()))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError) as exc:
            raise UserError(
                f"{self.dir / META} is damaged ({exc})",
                f"remove it or restore it from a backup of {self.dir}",
            ) from exc

    def save_meta(self, meta: Meta) -> None:
        private_dir(self.dir)
        meta.updated_at = now().isoformat()
        write_private(self.dir / META, json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n")

    def set_phase(self, phase: str, **changes: Any) -> Meta:
        meta = self.meta()
        assert meta is not None, "set_phase on an environment without a record"
        meta.phase = phase
        for key, value in changes.items():
            setattr(meta, key, value)
        self.save_meta(meta)
        return meta

    def outputs(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / OUTPUTS).read_text())
        except FileNotFoundError:
            return {}

    def save_outputs(self, outputs: dict[str, Any]) -> None:
        private_dir(self.dir)
        write_private(self.dir / OUTPUTS, json.dumps(outputs, indent=2, sort_keys=True) + "\n")

    @property
    def state_file(self) -> Path:
        return self.dir / "terraform.tfstate"

    @property
    def runs_dir(self) -> Path:
        return self.dir / "runs"

    def secure(self) -> None:
        """Owner-only permissions on everything Terraform or cfw wrote."""
        if not self.dir.exists():
            return
        os.chmod(self.dir, 0o700)
        for path in self.dir.rglob("*"):
            if path.is_symlink() or ".terraform" in path.parts:
                continue
            os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def forget(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- lock -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[None]:
        private_dir(self.root)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = _read_holder(fd)
                        raise UserError(
                            f"environment {self.name!r} is busy: {holder} holds "
                            f"{self.lock_path.relative_to(self.project)}",
                            "wait for it to finish, or pass --lock-timeout SECONDS to wait",
                        ) from None
                    time.sleep(0.5)
            info = {"pid": os.getpid(), "operation": operation, "since": now().isoformat()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    if not info:
        return "another cfw process"
    operation, pid, since = (info.get(k, "?") for k in ("operation", "pid", "since"))
    return f"`cfw {operation}` (pid {pid}, since {since})"


def records_here(project: Path) -> bool:
    """Whether PROJECT has cfw's records (.cfw/): without them no environment was brought
    up or ran here."""
    return (Path(project).resolve() / CFW_DIR).is_dir()


def list_environments(project: Path) -> list[EnvState]:
    root = Path(project).resolve() / CFW_DIR
    if not root.is_dir():
        return []
    return [
        EnvState(project, path.name)
        for path in sorted(root.iterdir())
        if path.is_dir() and (path / META).exists()
    ]

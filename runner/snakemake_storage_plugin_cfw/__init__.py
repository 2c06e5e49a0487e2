"""Snakemake storage plugin ``cfw``: a storage on local disk for cfw's ``local`` backend.

Queries are filesystem paths (normally absolute: ``<storage root>/<workflow path>``).
Objects are copied in and out, never linked, so a job sees only what it retrieved, as a
job in the cloud would. Unlike snakemake-storage-plugin-fs it needs no ``rsync``: copies
use :mod:`shutil`, and stores are atomic (write beside, then rename).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_storage_plugins.io import (
    IOCacheStorageInterface,
    Mtime,
    get_constant_prefix,
)
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_interface_storage_plugins.storage_object import (
    StorageObjectGlob,
    StorageObjectRead,
    StorageObjectTouch,
    StorageObjectWrite,
)
from snakemake_interface_storage_plugins.storage_provider import (
    ExampleQuery,
    Operation,
    QueryType,
    StorageProviderBase,
    StorageQueryValidationResult,
)

TIMESTAMP = ".snakemake_timestamp"
_SOURCES = re.compile(r"^snakemake-workflow-sources\.[0-9a-f]+\.tar\.xz$")


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):
    # Snakemake builds --storage-cfw-* flags from these annotations (typing.Optional needed)
    sources_dir: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "keep Snakemake's workflow source archives here instead of beside the "
            "outputs (cfw points it into .cfw/)",
            "env_var": False,
            "required": False,
        },
    )


class StorageProvider(StorageProviderBase):
    @classmethod
    def example_queries(cls) -> list[ExampleQuery]:
        return [
            ExampleQuery(
                query="/srv/cfw-storage/results/a.txt",
                type=QueryType.ANY,
                description="A file or directory below the storage root.",
            )
        ]

    def rate_limiter_key(self, query: str, operation: Operation) -> Any:
        return None

    def default_max_requests_per_second(self) -> float:
        return 1000.0

    def use_rate_limiter(self) -> bool:
        return False

    @classmethod
    def is_valid_query(cls, query: str) -> StorageQueryValidationResult:
        if urlparse(query).scheme:
            return StorageQueryValidationResult(
                query=query, valid=False, reason="expected a filesystem path, not a URL"
            )
        return StorageQueryValidationResult(query=query, valid=True)

    def list_objects(self, query: Any) -> Iterable[str]:
        path = Path(query)
        if path.is_dir():
            return [str(p) for p in path.rglob("*")]
        return [str(path)] if path.exists() else []


class StorageObject(StorageObjectRead, StorageObjectWrite, StorageObjectGlob, StorageObjectTouch):
    def __post_init__(self):
        self.path = Path(self.query)
        settings = self.provider.settings
        sources_dir = getattr(settings, "sources_dir", None) if settings else None
        if sources_dir and _SOURCES.match(self.path.name):
            self.path = Path(sources_dir) / self.path.name

    # -- read ---------------------------------------------------------------------------
    async def inventory(self, cache: IOCacheStorageInterface):
        key = self.cache_key()
        if key in cache.exists_in_storage:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            cache.exists_in_storage[key] = False
            return
        cache.mtime[key] = Mtime(storage=self._mtime(st))
        cache.size[key] = st.st_size
        cache.exists_in_storage[key] = True

    def get_inventory_parent(self) -> str | None:
        parent = self.path.parent
        return None if parent == Path(".") else str(parent)

    def local_suffix(self) -> str:
        return self.query.lstrip("/")

    def cleanup(self):
        pass

    def exists(self) -> bool:
        return self.path.exists()

    def mtime(self) -> float:
        return self._mtime(os.stat(self.path))

    def size(self) -> int:
        return os.stat(self.path).st_size

    def retrieve_object(self):
        target = self.local_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_atomic(self.path, target)

    # -- write --------------------------------------------------------------------------
    def store_object(self):
        source = self.local_path()
        if not source.exists():
            raise WorkflowError(f"cannot store {source}: it does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _copy_atomic(source, self.path)

    def remove(self):
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)

    # -- glob and touch -----------------------------------------------------------------
    def list_candidate_matches(self) -> Iterable[str]:
        prefix = Path(get_constant_prefix(self.query))
        if prefix.is_dir():
            return [str(p) for p in prefix.rglob("*")]
        return [str(prefix)]

    def touch(self):
        if self.path.is_dir():
            stamp = self.path / TIMESTAMP
            stamp.touch()
            os.utime(stamp)
        elif self.path.exists():
            os.utime(self.path)

    def _mtime(self, st: os.stat_result) -> float:
        if self.path.is_dir():
            stamp = self.path / TIMESTAMP
            if stamp.exists():
                return os.stat(stamp).st_mtime
        return st.st_mtime


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy a file or directory (following links, keeping mtimes), replacing ``target``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staged = tmp / "x"
        if source.is_dir():
            shutil.copytree(source, staged, symlinks=False)
        else:
            shutil.copy2(source, staged)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

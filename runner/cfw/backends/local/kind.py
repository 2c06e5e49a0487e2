"""Kind `local` as the core sees it."""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfw.backends._aws import aws_region, s3_storage_env
from cfw.backends.base import Capabilities, EnvContext, StorageSpec
from cfw.backends.kind import Identity, Kind
from cfw.backends.local import guard
from cfw.backends.local.config import LocalConfig
from cfw.core.errors import UserError
from cfw.core.rootmodule import ModuleCall, RootSpec


def default_sandbox_base() -> Path:
    return Path(tempfile.gettempdir()) / f"cfw-{getpass.getuser()}"


def sandbox_root(config: LocalConfig, env_id: str) -> Path:
    base = config.sandbox_root or default_sandbox_base()
    return Path(base).expanduser().absolute() / env_id


class LocalKind(Kind[LocalConfig]):
    name = "local"
    label = "local"
    summary = "this machine: every job in a fresh sandbox directory; no cloud account"
    config_model = LocalConfig
    root = RootSpec(modules=(ModuleCall("local", "local"),))
    capabilities = Capabilities(
        # a job may use this machine's GPUs, if it has any (they are not reserved per job)
        gpu=True,
        needs_up=False,
        containers=False,
        local_outputs=True,
    )
    backend_path = "cfw.backends.local.backend:LocalBackend"
    translate_path = "cfw.backends.local.translate:translate"
    default_jobs = os.cpu_count() or 2

    def tfvars(self, config: LocalConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        return {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": ident.labels(config.labels),
            "sandbox_root": str(sandbox_root(config, ident.env_id)),
        }

    def output_placeholders(self, config: LocalConfig, ident: Identity | None) -> dict[str, Any]:
        env_id = ident.env_id if ident else "adhoc"
        return {"sandbox_root": str(sandbox_root(config, env_id))}

    def storage(
        self,
        config: LocalConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        store = config.storage
        if store.provider == "disk":
            root = Path(store.root).expanduser() if store.root else workdir
            if not root.is_absolute():
                root = workdir / root
            return StorageSpec(
                provider="cfw",
                prefix=str(root.resolve()),
                args=("--storage-cfw-sources-dir", str(scratch / "sources")),
            )
        env = s3_storage_env(environ, endpoint=store.endpoint_url, region=aws_region(environ))
        if "SNAKEMAKE_STORAGE_S3_ACCESS_KEY" not in env:
            raise UserError(
                "storage provider s3 needs credentials",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        return StorageSpec(provider="s3", prefix=store.prefix or "", env=env)

    def heartbeat_store(
        self, ctx: EnvContext[LocalConfig], environ: Mapping[str, str]
    ) -> tuple[guard.LocalDirStore, str]:
        return guard.store_of(ctx.state_dir), ""

    def guard_adapter(
        self, ctx: EnvContext[LocalConfig], environ: Mapping[str, str]
    ) -> guard.LocalGuard:
        return guard.adapter_for(ctx)

    def leftovers(
        self,
        config: LocalConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        root = Path(outputs.get("sandbox_root") or sandbox_root(config, ident.env_id))
        return [f"directory {root}"] if root.exists() else []


KIND = LocalKind()

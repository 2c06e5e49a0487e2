"""JobSpec -> the local process description. Pure."""

from __future__ import annotations

from typing import Any

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.local.config import LocalConfig


def translate(spec: JobSpec, ctx: EnvContext[LocalConfig]) -> dict[str, Any]:
    config = ctx.config
    root = str(ctx.outputs["sandbox_root"]).rstrip("/")
    return {
        "name": spec.name,
        "argv": ["/bin/bash", "-c", spec.command],
        "sandbox": f"{root}/{spec.run_id}/{spec.name}-a{spec.attempt}",
        "env": sorted(spec.env),
        "limits": {
            "threads": max(1, spec.threads),
            "mem_mb": spec.mem_mb if config.enforce_memory else None,
            "runtime_s": spec.runtime * 60 if spec.runtime else None,
        },
        "keep_sandbox": config.keep_sandboxes,
        "launcher": config.launcher,
    }

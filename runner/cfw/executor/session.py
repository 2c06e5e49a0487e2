"""Which environment a run uses, and what its backend needs to know about it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from cfw.backends.base import EnvContext
from cfw.backends.kind import Identity, Kind
from cfw.backends.registry import Resolved, get_kind, resolve
from cfw.core.config import validate
from cfw.core.errors import UserError
from cfw.core.state import PHASE_UP, EnvState, list_environments, parse_time


def pick_environment(project: Path, requested: str | None) -> tuple[str, str]:
    """The environment to run on, and why: the flag, else the one that is up, else local."""
    if requested:
        return requested, "chosen with --env"
    up = [s.name for s in list_environments(project) if (m := s.meta()) and m.phase == PHASE_UP]
    if len(up) == 1:
        return up[0], "the one environment that is up"
    if len(up) > 1:
        raise UserError(
            f"{len(up)} environments are up ({', '.join(up)})",
            "choose one with --env NAME",
        )
    return "local", "no environment is up"


def open_context(
    project: Path,
    name: str,
    run_id: str,
    *,
    explain: bool = False,
    environ: Mapping[str, str] | None = None,
    attach: Callable[[Resolved], object] | None = None,
) -> tuple[Kind, EnvContext]:
    """The kind and context of a run on ``name``. ``attach`` records a shared environment
    that another working directory brought up (from its remote state) before it is read;
    the orchestration supplies it (this layer runs no Terraform)."""
    environ = os.environ if environ is None else environ
    state = EnvState(project, name)
    if not state.exists and not explain and attach is not None:
        resolved = resolve(project, name, environ=environ)
        if resolved.config.state.shared:  # brought up from another working directory?
            attach(resolved)
    meta = state.meta()
    if meta is not None and meta.phase == PHASE_UP:
        kind = get_kind(meta.kind)
        config = validate(kind.config_model, dict(meta.config), f"saved config of {name}")
        outputs = state.outputs()
        env_id = meta.env_id
    else:
        resolved = resolve(project, name, environ=environ)
        kind, config = resolved.kind, resolved.config
        if kind.capabilities.needs_up and not explain:
            if meta is not None:
                raise UserError(
                    f"environment {name!r} is not up (its last `up` ended {meta.phase})",
                    f"run `cfw up {name}` again, or `cfw down {name}` to clean up",
                )
            raise UserError(
                f"environment {name!r} is not up",
                f"run `cfw up {name}` first, or `cfw run --up --env {name}`",
            )
        ident = None
        if meta is not None:
            ident = Identity(
                meta.name,
                meta.kind,
                meta.env_id,
                parse_time(meta.created_at),
                parse_time(meta.expires_at),
            )
        outputs = kind.output_placeholders(config, ident)
        env_id = meta.env_id if meta else "adhoc"
    ctx = EnvContext(
        name=name,
        kind=kind.name,
        config=config,
        outputs=outputs,
        env_id=env_id,
        state_dir=state.dir,
        run_id=run_id,
        explain=explain,
    )
    return kind, ctx

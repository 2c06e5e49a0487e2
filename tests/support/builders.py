"""The job specs, identities and environment contexts the tests build, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.kind import Identity
from cfw.backends.registry import get_kind
from cfw.executor.spec import build_spec

IMAGE = "snakemake/snakemake:v9.27.1"
RUN = "r1"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def env_id(kind: str) -> str:
    return f"{kind}-0a1b2c"


def job_spec(
    rule: str = "align",
    jobid: int = 7,
    *,
    run_id: str = RUN,
    command: str = "python -m snakemake --target-jobs x",
    image: str = IMAGE,
    threads: int = 1,
    env: Sequence[str] = (),
    attempt: int = 1,
    preemptible_rule: bool = False,
    wildcards: Mapping[str, Any] | None = None,
    input_size_mb: int = 0,
    **resources: Any,
) -> JobSpec:
    """A job as the executor builds it from a Snakemake job: RESOURCES are the rule's
    resources (mem_mb, gpu, machine_type, ...), as Snakemake hands them over."""
    return build_spec(
        rule=rule,
        jobid=jobid,
        run_id=run_id,
        command=command,
        image=image,
        threads=threads,
        resources=resources,
        env_names=list(env),
        attempt=attempt,
        preemptible_rule=preemptible_rule,
        wildcards=wildcards,
        input_size_mb=input_size_mb,
    )


def identity(name: str, kind: str | None = None, env: str | None = None) -> Identity:
    kind = kind or name
    return Identity(name, kind, env or env_id(name), CREATED, None)


def context(
    kind: str,
    config: Any = None,
    *,
    name: str | None = None,
    outputs: Mapping[str, Any] | None = None,
    up: bool = True,
    env: str | None = None,
    state_dir: Path | None = None,
    run_id: str = RUN,
    explain: bool = False,
) -> EnvContext:
    """The context a backend gets for a run on an environment of KIND. CONFIG is the kind's
    config model or a mapping validated into one; OUTPUTS default to the placeholders the
    kind shows before `up` (with ``up``: for an environment that came up as ``env``)."""
    the_kind = get_kind(kind)
    name = name or kind
    if config is None or isinstance(config, Mapping):
        config = the_kind.config_model.model_validate(
            {"kind": kind, "name": name, **(config or {})}
        )
    ident = identity(name, kind, env) if up else None
    if outputs is None:
        outputs = the_kind.output_placeholders(config, ident)
    return EnvContext(
        name=name,
        kind=kind,
        config=config,
        outputs=dict(outputs),
        env_id=ident.env_id if ident else (env or "adhoc"),
        state_dir=state_dir or Path("/nonexistent"),
        run_id=run_id,
        explain=explain,
    )

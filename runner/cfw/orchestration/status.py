"""`cfw status` and `cfw reap`'s view of environments: state, age, expiry, running jobs, and
the estimated cost so far."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cfw.backends.registry import get_kind, resolve
from cfw.core.errors import CfwError, UserError
from cfw.core.records import active_runs, list_runs
from cfw.core.state import (
    PHASE_APPLYING,
    PHASE_DESTROY_FAILED,
    PHASE_DESTROYING,
    PHASE_FAILED,
    PHASE_UP,
    EnvState,
    list_environments,
    now,
    parse_time,
)
from cfw.core.terraform import count_state_resources
from cfw.orchestration import costs
from cfw.orchestration.lifecycle import Lifecycle


@dataclass
class EnvStatus:
    name: str
    kind: str
    state: str  # up / half-up / failed / destroying
    env_id: str
    created_at: str | None
    age: str
    expires_at: str | None
    expired: bool
    jobs_running: int
    resources: int
    last_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] | None = None  # so far: fixed cost x age plus its runs (estimate)
    runs: list[dict[str, Any]] = field(default_factory=list)  # active runs (guarding.py)
    guard: dict[str, Any] | None = None  # the guard's record: last check, last actions


class Status:
    def __init__(self, lifecycle: Lifecycle):
        self.lifecycle = lifecycle
        self.project = lifecycle.project
        self.environ: Mapping[str, str] = lifecycle.environ

    def of(self, name: str | None = None, details: bool = False) -> list[EnvStatus]:
        """Every environment here (or NAME, attaching a shared one up elsewhere)."""
        if name is not None and not EnvState(self.project, name).exists:
            try:
                resolved = resolve(self.project, name, environ=self.environ)
            except UserError:
                resolved = None
            if resolved is not None:
                self.lifecycle.attach(resolved)
        states = list_environments(self.project)
        if name is not None:
            states = [s for s in states if s.name == name]
            if not states:
                raise UserError(
                    f"environment {name!r} is not up here (no .cfw/{name}/)",
                    f"bring it up with `cfw up {name}`",
                )
        return [self._status_of(s, details) for s in states]

    def expired(self) -> list[EnvStatus]:
        return [s for s in self.of() if s.expired]

    def _status_of(self, state: EnvState, details: bool) -> EnvStatus:
        meta = state.meta()
        assert meta is not None  # list_environments lists only directories with a record
        created = parse_time(meta.created_at)
        expires = parse_time(meta.expires_at)
        current = now()
        resources = (
            count_state_resources(state.state_file) if state.state_file.exists() else meta.resources
        )
        if meta.phase == PHASE_UP:
            label = "up"
        elif meta.phase in (PHASE_APPLYING, PHASE_FAILED, PHASE_DESTROYING, PHASE_DESTROY_FAILED):
            label = "half-up" if resources else "failed"
        else:
            label = "failed" if meta.last_error else "down"
        extra: dict[str, Any] = {}
        if details and label == "up":
            kind = get_kind(meta.kind)
            config = kind.config_model.model_validate(meta.config)
            try:
                extra = kind.status_details(config, state.outputs())
            except CfwError as exc:
                extra = {"error": str(exc)}
        guarded = self._guarded(meta.name) if details and label == "up" else {}
        return EnvStatus(
            name=meta.name,
            kind=meta.kind,
            state=label,
            env_id=meta.env_id,
            created_at=meta.created_at,
            age=human(current - created) if created else "?",
            expires_at=meta.expires_at,
            expired=bool(expires and expires <= current),
            jobs_running=guarded.get(
                "jobs_active", sum(run.running for run in active_runs(state.runs_dir))
            ),
            resources=resources,
            last_error=meta.last_error,
            details=extra,
            cost=self._cost_of(state, meta, created, current, label == "up"),
            runs=guarded.get("runs", []),
            guard=guarded.get("guard"),
        )

    def _guarded(self, name: str) -> dict[str, Any]:
        """Runs, active jobs and the guard's record, through the kind's guard adapter."""
        from cfw.orchestration import guarding

        try:
            return guarding.status_view(self.project, name, self.environ)
        except CfwError as exc:
            return {"guard": {"error": str(exc)}}
        except Exception as exc:  # a cloud SDK's error: said, status goes on
            return {"guard": {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}}

    def _cost_of(self, state: EnvState, meta, created, current, up: bool) -> dict[str, Any] | None:
        """The estimated cost so far, from the saved config and the run records."""
        try:
            kind = get_kind(meta.kind)
            config = kind.config_model.model_validate(meta.config)
        except (CfwError, ValueError):
            return None
        env = costs.environment_costs(kind, config)
        return costs.cost_so_far(env, created, current, list_runs(state.runs_dir), up)


def human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"

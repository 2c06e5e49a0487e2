"""plan / up / down / render / attach: the environment lifecycle over Terraform."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import cfw
from cfw.backends.kind import Identity
from cfw.backends.registry import Resolved, dump_config, resolve
from cfw.core.claims import Claims
from cfw.core.errors import CfwError, Interrupted, UserError, WorkFailed
from cfw.core.render import render_root
from cfw.core.report import Reporter
from cfw.core.rootmodule import module_names, plan_root
from cfw.core.state import (
    PHASE_APPLYING,
    PHASE_DESTROY_FAILED,
    PHASE_DESTROYING,
    PHASE_FAILED,
    PHASE_RENDERED,
    PHASE_UP,
    EnvState,
    Meta,
    now,
    parse_time,
)
from cfw.core.terraform import Terraform, count_state_resources


def new_identity(
    resolved: Resolved, meta: Meta | None, created: datetime | None = None
) -> Identity:
    if meta is not None:
        return Identity(
            name=meta.name,
            kind=meta.kind,
            env_id=meta.env_id,
            created_at=parse_time(meta.created_at) or now(),
            expires_at=parse_time(meta.expires_at),
        )
    created = created or now()
    ttl = resolved.config.ttl
    return Identity(
        name=resolved.name,
        kind=resolved.kind.name,
        env_id=f"{resolved.name}-{secrets.token_hex(3)}",
        created_at=created,
        expires_at=created + ttl if ttl else None,
    )


def new_meta(resolved: Resolved, ident: Identity, with_expiry: bool = True) -> Meta:
    """The record of an environment cfw starts to know (its phase: rendered)."""
    return Meta(
        name=resolved.name,
        kind=resolved.kind.name,
        env_id=ident.env_id,
        phase=PHASE_RENDERED,
        created_at=ident.created_at.isoformat(),
        updated_at=ident.created_at.isoformat(),
        expires_at=ident.expires_at.isoformat() if with_expiry and ident.expires_at else None,
        config=dump_config(resolved.config),
        cfw_version=cfw.__version__,
    )


class Lifecycle:
    def __init__(
        self,
        project: Path,
        reporter: Reporter | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.project = Path(project).resolve()
        self.reporter = reporter or Reporter()
        self.environ = dict(os.environ if environ is None else environ)
        self.sensitive_outputs: set[str] = set()
        self.started = False  # `up` got the environment's lock (a refused one changed nothing)

    # -- helpers ----------------------------------------------------------------------------
    def terraform(self, resolved: Resolved, workdir: Path, lock_timeout: float = 60.0) -> Terraform:
        settings = resolved.config.terraform
        env = {**self.environ, **resolved.kind.terraform_env(resolved.config, self.environ)}
        return Terraform(
            workdir,
            binary=settings.binary,
            env=env,
            plugin_mirror=settings.plugin_mirror,
            progress=self.reporter,
            lock_timeout=max(lock_timeout, 1.0),
        )

    def render(self, resolved: Resolved, ident: Identity, outdir: Path, tf: Terraform) -> None:
        config, kind = resolved.config, resolved.kind
        state = config.state
        spec = kind.root_spec(config)
        tfvars = kind.tfvars(config, ident, self.project)
        context = {
            "name": resolved.name,
            "kind": kind.name,
            "state_backend": state.backend,
            "root": plan_root(spec, tfvars),
        }
        render_root(
            template=kind.template,
            context=context,
            tfvars=tfvars,
            modules=module_names(spec),
            backend=state.backend_config() if state.shared else None,
            outdir=outdir,
            terraform_fmt=tf.fmt,
        )
        kind.render_files(config, outdir)

    def _init(self, resolved: Resolved, tf: Terraform, workdir: Path) -> None:
        backend = workdir / "backend.hcl"
        tf.init(backend_config=backend if backend.exists() else None, reconfigure=True)

    def _prepare_root(
        self, resolved: Resolved, state: EnvState, ident: Identity, tf: Terraform
    ) -> Identity:
        """Render and init the root module; a shared environment already up elsewhere keeps
        its id in every label (re-rendered with it). Returns the identity in use."""
        self.render(resolved, ident, state.dir, tf)
        self._init(resolved, tf, state.dir)
        if resolved.config.state.shared:
            adopted = self._adopt_shared_identity(state, tf, ident)
            if adopted != ident:
                ident = adopted
                self.render(resolved, ident, state.dir, tf)
        return ident

    # -- commands ---------------------------------------------------------------------------
    def render_to(self, resolved: Resolved, outdir: Path) -> Path:
        """`cfw render`: the root module as `up` would write it, in a directory of the user's."""
        state = EnvState(self.project, resolved.name)
        ident = new_identity(resolved, state.meta())
        outdir = Path(outdir).resolve()
        tf = self.terraform(resolved, outdir)
        self.render(resolved, ident, outdir, tf)
        return outdir

    def plan(self, resolved: Resolved) -> dict[str, int]:
        state = EnvState(self.project, resolved.name)
        resolved.kind.preflight(resolved.config, self.environ)
        scratch = not state.exists
        workdir = state.root / f".plan-{resolved.name}" if scratch else state.dir
        with state.lock("plan"):
            try:
                tf = self.terraform(resolved, workdir)
                self.render(resolved, new_identity(resolved, state.meta()), workdir, tf)
                self._init(resolved, tf, workdir)
                result = tf.plan()
            finally:
                if scratch:  # a plan of an environment that is not up leaves nothing
                    shutil.rmtree(workdir, ignore_errors=True)
        return result.changes

    def up(
        self, resolved: Resolved, lock_timeout: float = 0.0, locked: bool = False
    ) -> dict[str, Any]:
        """Render, init, apply. ``locked``: the caller already holds the environment's lock."""
        kind, config = resolved.kind, resolved.config
        kind.preflight(config, self.environ)
        state = EnvState(self.project, resolved.name)
        with contextlib.nullcontext() if locked else state.lock("up", lock_timeout):
            self.started = True
            meta = state.meta()
            if meta and meta.phase == PHASE_UP:
                self.reporter.info(f"{resolved.name} is up; applying its config again")
            ident = new_identity(resolved, meta)
            # the binary and the mirror are checked before anything is saved: an `up` that
            # stops here leaves no environment behind for `down` to trip over
            tf = self.terraform(resolved, state.dir, lock_timeout)
            if meta is None:
                meta = new_meta(resolved, ident)
            meta.config = dump_config(config)
            state.save_meta(meta)
            ident = self._prepare_root(resolved, state, ident, tf)
            previous = meta.phase
            state.set_phase(PHASE_APPLYING)
            try:
                self._apply(resolved, ident, state, tf)
            except UserError:  # e.g. the state is locked: nothing was applied
                state.set_phase(previous if previous == PHASE_UP else PHASE_FAILED)
                raise
            except (CfwError, KeyboardInterrupt) as exc:
                left = self._count(state, tf)
                state.set_phase(PHASE_FAILED, last_error=str(exc), resources=left)
                state.secure()
                if isinstance(exc, KeyboardInterrupt):
                    raise Interrupted(
                        f"`cfw up {resolved.name}` was interrupted with {left} resources created",
                        f"run `cfw down {resolved.name}` to remove them",
                    ) from exc
                hint = f"run `cfw down {resolved.name}` to remove the {left} resources it created"
                raise WorkFailed(f"{exc}", hint if left else None) from exc
            outputs = tf.output()
            state.save_outputs(outputs)
            self.sensitive_outputs = set(tf.sensitive)
            try:
                kind.after_apply(config, outputs, self.environ)
            except CfwError as exc:
                state.set_phase(PHASE_FAILED, last_error=str(exc), resources=self._count(state, tf))
                state.secure()
                raise WorkFailed(
                    f"{resolved.name} was applied, but setting it up failed: {exc.message}",
                    f"run `cfw up {resolved.name}` again to retry, or `cfw down {resolved.name}`",
                ) from exc
            state.set_phase(PHASE_UP, last_error=None, resources=self._count(state, tf))
            state.secure()
            return outputs

    def _apply(self, resolved: Resolved, ident: Identity, state: EnvState, tf: Terraform) -> None:
        """Apply; once more, re-rendered, when the kind adopts what made the apply fail
        (a shared resource another environment created meanwhile)."""
        try:
            tf.apply()
        except WorkFailed as exc:
            why = resolved.kind.adopt_after_failure(resolved.config, str(exc))
            if not why:
                raise
            self.reporter.info(why)
            self.render(resolved, ident, state.dir, tf)
            tf.apply()

    def _adopt_shared_identity(self, state: EnvState, tf: Terraform, ident: Identity) -> Identity:
        """A shared environment already up elsewhere keeps its id; re-render with it."""
        existing = tf.output()
        env_id = existing.get("cfw_id")
        if not env_id or env_id == ident.env_id:
            return ident
        labels = existing.get("cfw_labels") or {}
        expires = labels.get("cfw-expires-at")
        meta = state.meta()
        assert meta is not None
        meta.env_id = env_id
        if expires and expires != "never":
            meta.expires_at = (
                datetime.strptime(expires, "%Y%m%dt%H%M%Sz")
                .replace(tzinfo=ident.created_at.tzinfo)
                .isoformat()
            )
        state.save_meta(meta)
        self.reporter.info(f"{state.name} is already up elsewhere (id {env_id}); adopting it")
        return Identity(
            ident.name, ident.kind, env_id, ident.created_at, parse_time(meta.expires_at)
        )

    def attach(self, resolved: Resolved) -> bool:
        """Know a shared environment that another working directory brought up.

        Reads its remote state's outputs (no apply) and records it in .cfw/NAME/ as up.
        Returns False when the remote state has no such environment.
        """
        state = EnvState(self.project, resolved.name)
        if state.exists or not resolved.config.state.shared:
            return state.exists
        with state.lock("attach"):
            ident = new_identity(resolved, None)
            state.save_meta(new_meta(resolved, ident, with_expiry=False))
            tf = self.terraform(resolved, state.dir)
            self.render(resolved, ident, state.dir, tf)
            self._init(resolved, tf, state.dir)
            outputs = tf.output()
            if not outputs.get("cfw_id"):
                state.forget()
                return False
            ident = self._adopt_shared_identity(state, tf, ident)
            self.render(resolved, ident, state.dir, tf)  # tfvars with the shared identity
            state.save_outputs(outputs)
            state.set_phase(PHASE_UP, resources=self._count(state, tf))
            state.secure()
            self.reporter.info(
                f"attached to shared environment {resolved.name} "
                f"(id {ident.env_id}) from its remote state"
            )
            return True

    def _count(self, state: EnvState, tf: Terraform) -> int:
        if state.state_file.exists():
            return count_state_resources(state.state_file)
        try:
            return len(tf.state_list())
        except CfwError:
            return 0

    @staticmethod
    def _has_terraform_state(state: EnvState) -> bool:
        """Whether the local Terraform state (or its backup) records any resource."""
        if (state.dir / "errored.tfstate").exists():
            return True
        for path in (state.state_file, state.state_file.with_suffix(".tfstate.backup")):
            try:
                if json.loads(path.read_text()).get("resources"):
                    return True
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                return True  # unreadable: let Terraform decide
        return False

    def _cancel_jobs(
        self,
        resolved: Resolved,
        env_id: str,
        state: EnvState,
        outputs: Mapping[str, Any],
        operation: str,
    ) -> None:
        from cfw.backends.base import EnvContext
        from cfw.orchestration.guarding import cancel_every_job

        if not outputs and resolved.kind.capabilities.needs_up:
            return  # nothing came up: no job can run on it
        ctx = EnvContext(
            name=resolved.name,
            kind=resolved.kind.name,
            config=resolved.config,
            outputs=outputs or resolved.kind.output_placeholders(resolved.config, None),
            env_id=env_id,
            state_dir=state.dir,
            run_id="down",
        )
        cancel_every_job(resolved.kind, ctx, self.environ, self.reporter, operation=operation)

    def down(
        self,
        name: str,
        lock_timeout: float = 0.0,
        locked: bool = False,
        operation: str = "down",
    ) -> bool:
        """Destroy, verify, forget. Returns False when there was nothing to destroy.
        Refused (or, with lock_timeout, waits) while a run here holds a claim on NAME, or a
        live run elsewhere keeps a heartbeat (``operation`` names the command in that
        message: down, run --teardown, reap)."""
        state = EnvState(self.project, name)
        meta = state.meta()
        if meta is None:
            try:
                resolved = resolve(self.project, name, environ=self.environ)
            except UserError:
                resolved = None
            if resolved is None or not resolved.config.state.shared:
                return False
        with (
            contextlib.nullcontext() if locked else state.lock("down", lock_timeout),
            Claims(state.dir, name).exclusive(operation, lock_timeout),
        ):
            meta = state.meta()
            resolved = resolve(self.project, name, environ=self.environ, prefer_saved=True)
            if meta is None:  # a shared environment brought up from another directory
                state.save_meta(new_meta(resolved, new_identity(resolved, None), False))
                meta = state.meta()
            assert meta is not None
            if (
                meta.phase == PHASE_RENDERED
                and not resolved.config.state.shared
                and not self._has_terraform_state(state)
            ):
                # an `up` stopped before it applied anything: there is nothing to destroy,
                # and nothing Terraform needs to run
                self.reporter.info(f"{name} has no Terraform state: nothing was created")
                state.forget()
                return True
            tf = self.terraform(resolved, state.dir, lock_timeout)
            ident = self._prepare_root(resolved, state, new_identity(resolved, meta), tf)
            outputs = tf.output() if resolved.config.state.shared else state.outputs()
            previous = meta.phase
            # the jobs first: destroying what they run on would leave them billing
            self._cancel_jobs(resolved, meta.env_id, state, outputs, operation)
            state.set_phase(PHASE_DESTROYING)
            try:
                if outputs:
                    resolved.kind.before_destroy(resolved.config, outputs, self.environ)
                    kept = resolved.kind.kept_on_destroy(resolved.config, outputs, self.environ)
                    for why in kept.values():
                        self.reporter.info(f"leaving {why} in place")
                    if kept:
                        tf.state_rm(kept)
                tf.destroy()
            except UserError:  # e.g. the state is locked: nothing was destroyed
                state.set_phase(previous)
                raise
            except (CfwError, KeyboardInterrupt) as exc:
                state.set_phase(
                    PHASE_DESTROY_FAILED, last_error=str(exc), resources=self._count(state, tf)
                )
                if isinstance(exc, KeyboardInterrupt):
                    raise Interrupted(
                        f"`cfw down {name}` was interrupted", f"run `cfw down {name}` again"
                    ) from exc
                raise WorkFailed(
                    str(exc), f"fix the cause and run `cfw down {name}` again"
                ) from exc
            self.reporter.info(f"verifying that nothing tagged cfw-id={ident.env_id} is left")
            kind, config = resolved.kind, resolved.config
            left = kind.leftovers(config, ident, outputs, self.environ)
            if left:
                # what Terraform lost track of (an interrupted `up`, a crash): it carries this
                # environment's id, so it is this environment's to remove
                self.reporter.info(
                    f"{len(left)} resource(s) still carry cfw-id={ident.env_id} after destroy: "
                    "removing them"
                )
                left = kind.remove_leftovers(
                    config, ident, outputs, self.environ, self.reporter.info
                )
                if not left:
                    self.reporter.info(f"nothing tagged cfw-id={ident.env_id} is left")
            if left:
                for line in left:
                    self.reporter.warn(f"left behind: {line}")
                # destroyed: no job runs on what the outputs named (the next `down` only
                # destroys nothing, removes what is left and verifies)
                if not resolved.config.state.shared:
                    state.save_outputs({})
                state.set_phase(PHASE_DESTROY_FAILED, last_error=f"left behind: {'; '.join(left)}")
                raise WorkFailed(
                    f"{len(left)} resource(s) of {name} could not be removed after destroy "
                    "(each is named above, with why)",
                    f"remove them with the commands above; `cfw down {name}` then verifies "
                    "and forgets the environment",
                )
            state.forget()
            return True

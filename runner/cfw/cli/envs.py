"""Environment commands: init, plan, up, down, render, status, reap.

Module level imports only what the options need; each command imports the orchestration
it calls (Terraform, Jinja, pydantic, rich tables), so `cfw --help` does not pay for them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from cfw.backends.registry import (
    check_name,
    config_path,
    get_kind,
    kind_names,
    resolve,
    write_config,
)
from cfw.cli import app
from cfw.cli.output import Output
from cfw.core.assets import example_environments_dir
from cfw.core.errors import CfwError, UserError
from cfw.core.state import EnvState, records_here

_SECRET_NAME = re.compile(r"password|secret|token|key|sas|credential", re.I)

SET_HELP = "Override a config value, e.g. --set region=europe-west4 (repeatable)."
YES_HELP = "Answer yes to the confirmation (needed without a terminal)."
LOCK_HELP = "Wait up to this many seconds for another cfw working on this environment."


def _complete_env(incomplete: str) -> list[str]:
    names = set(kind_names())
    env_dir = Path.cwd() / "environments"
    if env_dir.is_dir():
        names |= {p.stem for p in env_dir.glob("*.yaml")}
    return sorted(n for n in names if n.startswith(incomplete))


NAME_ARG = typer.Argument(
    ..., help="Environment name (or a kind name for its defaults).", autocompletion=_complete_env
)


def confirm(question: str, yes: bool, command: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError(
            f"`cfw {command}` asks for confirmation and there is no terminal to ask on",
            "add --yes",
        )
    if not typer.confirm(question, default=False, err=True):
        raise CfwError("aborted; nothing was changed")


def say_costs(out: Output, resolved) -> None:
    """What the environment costs while idle and per pool node: from its config, no cloud."""
    from cfw.orchestration import costs

    estimate = costs.environment_costs(resolved.kind, resolved.config)
    for line in costs.environment_lines(resolved.name, estimate):
        out.info(line)


def _overrides(sets: list[str], **flags: str | None) -> list[str]:
    return [f"{key}={value}" for key, value in flags.items() if value is not None] + list(sets)


@app.command()
def init(
    kind: str = typer.Argument(
        ...,
        help="Kind: " + ", ".join(kind_names()),
        autocompletion=lambda incomplete: [k for k in kind_names() if k.startswith(incomplete)],
    ),
    name: str = typer.Option(None, "--name", "-n", help="Environment name (default: the kind)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
) -> None:
    """Write environments/NAME.yaml from the kind's example config."""
    out = Output()
    get_kind(kind)  # unknown kind -> one-line error
    name = name or kind
    project = Path.cwd()
    path = config_path(project, name)
    if path.exists() and not force:
        raise UserError(
            f"{path.relative_to(project)} already exists",
            "edit it, choose another --name, or pass --force",
        )
    example = example_environments_dir() / f"{kind}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text() if path.exists() else None
    path.write_text(example.read_text() if example.exists() else f"kind: {kind}\n")
    try:
        resolved = resolve(project, name, overrides=sets)
    except CfwError:
        if previous is None:
            path.unlink()
        else:
            path.write_text(previous)
        raise
    if sets:
        write_config(project, resolved)
    out.success(f"wrote {path.relative_to(project)} (kind {kind}); edit it, then `cfw up {name}`")


@app.command()
def plan(
    name: str = NAME_ARG,
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Show what `cfw up NAME` would create or change."""
    from cfw.orchestration.lifecycle import Lifecycle

    out = Output()
    resolved = resolve(Path.cwd(), name, overrides=sets)
    changes = Lifecycle(Path.cwd(), out).plan(resolved)
    out.done()
    say_costs(out, resolved)
    out.success(
        f"plan for {name}: {changes.get('add', 0)} to add, {changes.get('change', 0)} to change, "
        f"{changes.get('remove', 0)} to destroy"
    )


@app.command()
def up(
    name: str = NAME_ARG,
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    ttl: str = typer.Option(
        None, "--ttl", help="Destroy after this long with `cfw reap` (8h, 2d)."
    ),
    region: str = typer.Option(None, "--region", help="Cloud region."),
    project_id: str = typer.Option(None, "--project", help="Cloud project (GCP)."),
    yes: bool = typer.Option(False, "--yes", "-y", help=YES_HELP),
    lock_timeout: float = typer.Option(0.0, "--lock-timeout", help=LOCK_HELP),
) -> None:
    """Create (or update) environment NAME with Terraform."""
    from cfw.orchestration.lifecycle import Lifecycle

    out = Output()
    project = Path.cwd()
    resolved = resolve(
        project, name, overrides=_overrides(sets, ttl=ttl, region=region, project=project_id)
    )
    # missing credentials/project: one line, before anything (even the config file) is written
    resolved.kind.preflight(resolved.config, os.environ)
    state = EnvState(project, name)
    verb = "Update" if state.exists else "Create"
    if yes or sys.stdin.isatty():  # without either, the confirmation stops with one line
        say_costs(out, resolved)
    confirm(f"{verb} environment {name} (kind {resolved.kind.name})?", yes, "up")
    lifecycle = Lifecycle(project, out)
    try:
        outputs = lifecycle.up(resolved, lock_timeout=lock_timeout)
    finally:
        # once `up` got past its preflight checks and the lock (a config that stops there,
        # or an `up` refused because another cfw works on the environment, is not kept)
        if resolved.path is None and lifecycle.started and state.exists:
            written = write_config(project, resolved)
            out.info(f"wrote the resolved config to {written.relative_to(project)}")
    out.done()
    meta = state.meta()
    expiry = f"; expires {meta.expires_at} (cfw reap)" if meta and meta.expires_at else ""
    out.success(f"{name} is up (id {meta.env_id if meta else '?'}){expiry}")
    from cfw.orchestration import guarding

    guarding.say_unguarded(out, resolved)
    hidden = lifecycle.sensitive_outputs
    for key, value in sorted(outputs.items()):
        if key in hidden or _SECRET_NAME.search(key) or key == "cfw_labels":
            continue
        out.info(f"  {key} = {json.dumps(value) if not isinstance(value, str) else value}")


@app.command()
def down(
    name: str = NAME_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help=YES_HELP),
    lock_timeout: float = typer.Option(0.0, "--lock-timeout", help=LOCK_HELP),
) -> None:
    """Destroy environment NAME, verify nothing is left, and forget it."""
    from cfw.orchestration.lifecycle import Lifecycle

    out = Output()
    project = Path.cwd()
    check_name(name)
    state = EnvState(project, name)
    if state.exists:
        confirm(f"Destroy environment {name} and everything it created?", yes, "down")
    if Lifecycle(project, out).down(name, lock_timeout=lock_timeout):
        out.done()
        out.success(f"{name} is down: destroyed, verified, forgotten")
    else:
        out.info(f"{name} is not up here; nothing to destroy")


@app.command()
def render(
    name: str = NAME_ARG,
    out_dir: Path = typer.Option(..., "--out", help="Directory to write the root module to."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Write NAME's Terraform root module (as `up` would) to a directory."""
    from cfw.orchestration.lifecycle import Lifecycle

    out = Output()
    resolved = resolve(Path.cwd(), name, overrides=sets)
    written = Lifecycle(Path.cwd(), out).render_to(resolved, out_dir)
    out.success(f"rendered {name} (kind {resolved.kind.name}) into {written}")


@app.command()
def status(
    name: str = typer.Argument(None, help="Only this environment.", autocompletion=_complete_env),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    details: bool = typer.Option(False, "--details", help="Ask the cloud for pool/node details."),
) -> None:
    """Environments here: kind, state (up / half-up / failed / ready), age, expiry, jobs
    running, and their recent runs."""
    out = Output(quiet=as_json)
    rows = []
    # nothing here (no .cfw/: no environment was brought up or ran here): nothing to read,
    # so none of the machinery that reads it is imported
    if name is not None or records_here(Path.cwd()):
        from cfw.orchestration.lifecycle import Lifecycle
        from cfw.orchestration.status import Status

        rows = Status(Lifecycle(Path.cwd(), out)).of(name, details=details or bool(name))
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        out.info("no environments here; bring one up with `cfw up KIND`")
        return
    from rich.table import Table

    from cfw.core.prices import format_usd
    from cfw.orchestration import guarding

    table = Table("NAME", "KIND", "STATE", "AGE", "EXPIRES", "JOBS RUNNING", "RESOURCES", "COST*")
    for r in rows:
        colour = {"up": "green", "half-up": "yellow", "failed": "red"}.get(r.state, "white")
        expires = (r.expires_at or "never") + (" (expired)" if r.expired else "")
        table.add_row(
            r.name,
            r.kind,
            f"[{colour}]{r.state}[/]",
            r.age,
            expires,
            str(r.jobs_running),
            str(r.resources),
            format_usd(r.cost["total_usd"]) if r.cost else "?",
        )
    out.table(table)
    out.info("* so far, an estimate from list prices (not a bill): fixed costs while up, plus runs")
    runs = [(r.name, run) for r in rows for run in r.runs]
    if runs:
        recent = Table(title="recent runs")
        for column in ("ENVIRONMENT", "RUN", "STARTED (UTC)", "STATE"):
            recent.add_column(column, no_wrap=True)
        for column in ("DONE", "FAILED", "CANCELLED"):
            recent.add_column(column, justify="right")
        for env_name, run in runs:
            colour = {"success": "green", "running": "cyan", "interrupted": "yellow"}.get(
                run.state, "red"
            )
            recent.add_row(
                env_name,
                run.run_id,
                run.started[:16].replace("T", " "),
                f"[{colour}]{run.state}[/]",
                str(run.done),
                str(run.failed),
                str(run.cancelled),
            )
        out.table(recent)
    for r in rows:
        if r.last_error and r.state != "up":
            out.warn(f"{r.name}: {r.last_error}")
        for key, value in r.details.items():
            out.info(f"{r.name}: {key}: {value}")
        guarding.say_runs(out, r.name, r.active_runs, r.guard)


@app.command()
def reap(
    yes: bool = typer.Option(False, "--yes", "-y", help=YES_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what is past its ttl."),
) -> None:
    """Destroy every environment here that is past its ttl."""
    from cfw.orchestration.lifecycle import Lifecycle
    from cfw.orchestration.status import Status

    out = Output()
    lifecycle = Lifecycle(Path.cwd(), out)
    expired = Status(lifecycle).expired()
    if not expired:
        out.info("nothing is past its ttl")
        return
    names = ", ".join(r.name for r in expired)
    out.info(f"past their ttl: {names}")
    if dry_run:
        return
    confirm(f"Destroy {names}?", yes, "reap")
    failed = []
    for r in expired:
        try:
            lifecycle.down(r.name, operation="reap")
            out.done()
            out.success(f"reaped {r.name}")
        except CfwError as exc:
            out.done()
            out.error(f"{r.name}: {exc}")
            failed.append(r.name)
    if failed:
        from cfw.core.errors import WorkFailed

        raise WorkFailed(f"could not reap {', '.join(failed)}", "see the errors above")

"""`cfw guard NAME --once [--dry-run]` and `cfw cancel NAME [RUN]`: the guard's check and
cancel, from any machine with the environment's config (and remote state if shared)."""

from __future__ import annotations

from pathlib import Path

import typer

from cfw.backends.registry import check_name
from cfw.cli import app
from cfw.cli.envs import NAME_ARG
from cfw.cli.output import Output
from cfw.core.errors import UserError, WorkFailed


@app.command()
def guard(
    name: str = NAME_ARG,
    once: bool = typer.Option(False, "--once", help="Run one check now (required)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print what it would do."),
) -> None:
    """Run the guard's check of NAME once: cancel the jobs of runs whose runner is gone,
    stop what bills while idle, enforce ttl (as the cloud guard does on its schedule)."""
    if not once:
        raise UserError(
            "`cfw guard` runs one check and needs --once",
            f"run `cfw guard {name} --once` (from cron for a schedule)",
        )
    check_name(name)
    out = Output()
    from cfw.orchestration import guarding  # the run machinery: imported when used

    outcome = guarding.guard_once(Path.cwd(), name, dry_run, out)
    for line in outcome.errors:
        out.error(line)
    if outcome.errors:
        raise WorkFailed(
            f"{len(outcome.errors)} of the guard's actions on {name} failed",
            "see the errors above; the next check tries again",
        )


@app.command()
def cancel(
    name: str = NAME_ARG,
    run: str = typer.Argument(None, help="The run to cancel (default: runs whose runner is gone)."),
) -> None:
    """Cancel every job of RUN on NAME by the run's label; without RUN, the jobs of every run
    whose runner is gone (its heartbeat stale, or its process on this machine dead).
    Idempotent: says what it cancelled."""
    check_name(name)
    out = Output()
    from cfw.orchestration import guarding

    guarding.cancel(Path.cwd(), name, run, out)

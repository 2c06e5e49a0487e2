"""`cfw run` and `cfw logs`."""

from __future__ import annotations

from pathlib import Path

import typer

from cfw.backends.registry import check_name, config_path, kind_names
from cfw.cli import app
from cfw.cli.envs import LOCK_HELP, _complete_env
from cfw.cli.output import Output
from cfw.core.errors import UserError
from cfw.core.state import EnvState

# the run machinery (Snakemake's API, the executor, asyncio) is imported by the commands


def _is_environment(project: Path, token: str) -> bool:
    from cfw.core.config import NAME_RE

    return bool(NAME_RE.match(token)) and (
        token in kind_names()
        or config_path(project, token).exists()
        or EnvState(project, token).exists
    )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    options_metavar="[OPTIONS] [SNAKEMAKE ARGS]...",
)
def run(
    ctx: typer.Context,
    env: str = typer.Option(
        None,
        "--env",
        help="Environment to run on (default: the one that is up, else local).",
        autocompletion=_complete_env,
    ),
    up: bool = typer.Option(
        False, "--up", help="Bring the environment up first (`cfw run --up gke` names it too)."
    ),
    teardown: bool = typer.Option(
        False,
        "--teardown",
        help="Tear the environment down afterwards: after success, failure, SIGINT or SIGTERM.",
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Print each job's exact submission as JSON lines; submit nothing."
    ),
    download: bool = typer.Option(
        False,
        "--download",
        help="Cloud kinds: download the requested targets from the environment's storage.",
    ),
    lock_timeout: float = typer.Option(0.0, "--lock-timeout", help=LOCK_HELP),
    budget: float = typer.Option(
        None,
        "--budget",
        metavar="USD",
        help="Submit no new job once the run's estimated job cost passes this many US "
        "dollars (default: the environment's budget_usd).",
    ),
) -> None:
    """Run the Snakefile here on an environment. Other arguments go to Snakemake."""
    from cfw.orchestration.run import Runner, RunRequest

    project = Path.cwd()
    args = list(ctx.args)
    if up and env is None and args and _is_environment(project, args[0]):
        env = args.pop(0)
    out = Output(quiet=explain)
    runner = Runner(project, out)
    code = runner.run(
        RunRequest(
            env=env,
            up=up,
            teardown=teardown,
            explain=explain,
            download=download,
            lock_timeout=lock_timeout,
            snakemake_args=args,
            budget=budget,
        )
    )
    raise typer.Exit(code)


@app.command()
def logs(
    name: str = typer.Argument(..., help="Environment name.", autocompletion=_complete_env),
    jobid: str = typer.Argument(..., help="Snakemake job id or the backend's job id."),
    run_id: str = typer.Option(
        None, "--run", help="Look in this run (default: the newest run that has the job)."
    ),
) -> None:
    """Print a job's log."""
    from cfw.cli.output import write_data
    from cfw.core.records import earlier_attempts, find_job

    project = Path.cwd()
    check_name(name)
    state = EnvState(project, name)
    if not state.runs_dir.exists():
        raise UserError(
            f"environment {name!r} has no runs here (no .cfw/{name}/runs/)",
            "run `cfw logs` in the workflow directory the run started in; "
            "`cfw status` lists the environments here",
        )
    found = find_job(state.runs_dir, jobid, run_id)
    if found is None:
        where = (
            f"run {run_id}"
            if run_id
            else f"the runs recorded in {state.runs_dir.relative_to(project)}"
        )
        raise UserError(
            f"no job {jobid!r} in {where}",
            "give the job id Snakemake printed (jobid: N) or the cfw job id",
        )
    run, record = found
    for attempt in earlier_attempts(state.runs_dir / run.run_id, jobid):  # preempted ones
        said = f"--- {attempt['external_id']} ({attempt.get('capacity', '?')}): {attempt['event']}"
        said += f": {attempt['reason']}" if attempt.get("reason") else ""
        typer.echo(said)
        old = attempt.get("log")
        if old and Path(old).exists():
            typer.echo(Path(old).read_text(errors="replace"), nl=False)
    saved = record.get("log")
    if saved and Path(saved).exists():
        text = Path(saved).read_text(errors="replace")
    else:
        from cfw.executor.session import open_context

        kind, ctx = open_context(project, name, run.run_id)
        text = kind.backend(ctx).logs(record["external_id"])
    if not write_data(text):
        raise typer.Exit(0)
    Output().info(
        f"job {record.get('jobid')} ({record.get('rule', '?')}) of run {run.run_id}: "
        f"{record['event']}" + (f"; log saved at {saved}" if saved else "")
    )

"""`cfw run --explain`: one JSON object per DAG job, the submission it would get; and the
dry-run with cfw's explaining executor that computes them (cfw/executor/explain.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cfw.core import snakemake_args
from cfw.core.errors import UserError, WorkFailed
from cfw.core.report import Reporter
from cfw.executor import explain as explain_mod
from cfw.orchestration.invocation import Prepared


def dry_run(project: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Snakemake's dry-run with cfw's explaining executor."""
    return subprocess.run(
        [sys.executable, "-m", "cfw.executor.explain", *argv],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        check=False,
    )


def explain(
    project: Path, reporter: Reporter, name: str, prepared: Prepared, user_args: list[str]
) -> int:
    """Print one JSON object per DAG job: the submission it would get. Submits nothing."""
    argv, env, storage = prepared.argv, prepared.env, prepared.storage
    with tempfile.TemporaryDirectory(prefix="cfw-explain-") as tmp:
        out = Path(tmp) / "jobs.jsonl"
        out.touch()
        env[explain_mod.OUT_VAR] = str(out)
        env[explain_mod.ENV_VAR] = name
        env[explain_mod.CORES_VAR] = (
            snakemake_args.flag_value(user_args, snakemake_args.CORES) or "all"
        )
        if not storage.on_this_machine and not snakemake_args.has_flag(
            user_args, snakemake_args.STORAGE
        ):
            # a remote storage (perhaps not even created yet): the DAG is computed from
            # the workflow directory, as `cfw run` stages it; the commands show the
            # storage a real run uses
            env[explain_mod.STORAGE_VAR] = json.dumps(
                {"provider": storage.provider, "prefix": storage.prefix}
            )
            argv = snakemake_args.replace_storage(argv, "cfw", str(project))
        proc = dry_run(project, argv, env)
        if proc.returncode != 0:
            snakefile_mistake(project, proc.stdout)
            tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
            print(tail, file=sys.stderr)
            raise WorkFailed(
                "snakemake could not compute the DAG to explain", "see its messages above"
            )
        records = [json.loads(line) for line in out.read_text().splitlines()]
    refused = [r for r in records if explain_mod.ERROR in r]
    lines = [r for r in records if explain_mod.ERROR not in r]
    for record in lines:
        print(json.dumps(record))
    summary = (
        f"{len(lines)} job(s) explained for environment {name} "
        f"(kind {prepared.kind.name}); nothing was submitted"
    )
    summary += _prices_said(lines)
    if not records:  # said even under --explain's quiet output: stdout is empty
        reporter.warn(f"{summary}: Snakemake has nothing to do (use --forceall?)")
    else:
        reporter.info(summary)
    if refused:
        first = refused[0]
        error = first[explain_mod.ERROR]
        raise UserError(
            f"{len(refused)} job(s) cannot be submitted to {name}; "
            f"rule {first['rule']} (job {first['jobid']}): "
            + error["message"].removeprefix(f"rule {first['rule']}: "),
            error.get("hint") or "change the rule's resources or the environment's config",
        )
    return 0


@contextlib.contextmanager
def no_empty_dirs_left(root: Path) -> Iterator[None]:
    """Remove the directories below ROOT (ROOT too) made meanwhile and left empty: an
    explain keeps no record, and should leave no empty .cfw/<env>/ behind."""
    before = {p for p in root.rglob("*") if p.is_dir()} | ({root} if root.is_dir() else set())
    try:
        yield
    finally:
        made = [root, *root.rglob("*")] if root.is_dir() else []
        for path in sorted(made, key=lambda p: len(p.parts), reverse=True):
            if path not in before and path.is_dir() and not any(path.iterdir()):
                with contextlib.suppress(OSError):
                    path.rmdir()


def collect(project: Path, name: str, prepared: Prepared) -> dict:
    """The DAG's external inputs and targets, computed with the workflow directory as the
    storage and every job forced, so that nothing depends on what the bucket holds."""
    argv = [*snakemake_args.replace_storage(prepared.argv, "cfw", str(project)), "--forceall"]
    env = prepared.env
    with tempfile.TemporaryDirectory(prefix="cfw-collect-") as tmp:
        out = Path(tmp) / "collect.json"
        env[explain_mod.COLLECT_VAR] = str(out)
        env[explain_mod.OUT_VAR] = os.devnull
        env[explain_mod.ENV_VAR] = name
        proc = dry_run(project, argv, env)
        if not out.exists():
            snakefile_mistake(project, proc.stdout)
            print("\n".join(proc.stdout.strip().splitlines()[-15:]), file=sys.stderr)
            raise WorkFailed(
                "snakemake could not compute the workflow's DAG", "see its messages above"
            )
        found = json.loads(out.read_text())
    if explain_mod.ERROR in found:
        error = found[explain_mod.ERROR]
        raise UserError(error["message"], error.get("hint"))
    return found


# how Snakemake reports a Snakefile it cannot read: `WorkflowError in file "PATH", line N:`
# and the cause on the next line
_SNAKEFILE_ERROR = re.compile(
    r'^(?P<type>\w+(?:Error|Exception)) in file "?(?P<file>[^"\n]+?)"?, line (?P<line>\d+):\n'
    r"(?P<message>(?:.+\n?)+)",
    re.M,
)


def snakefile_mistake(project: Path, output: str) -> None:
    """Raise the one-line UserError of a Snakefile Snakemake could not read (a resource it
    cannot parse, a syntax error), instead of its multi-line report."""
    match = _SNAKEFILE_ERROR.search(output or "")
    if not match:
        return
    path = Path(match["file"])
    with contextlib.suppress(ValueError):
        path = path.relative_to(project)
    # the cause, on the lines up to the first blank one
    message = " ".join(match["message"].split()).rstrip(".")
    hint = "fix the Snakefile"
    if "could not be parsed" in message and "'runtime'" in message:
        hint = "give runtime as minutes (runtime=30) or a duration such as runtime='2h'"
    elif "Resource" in message:
        hint = "give the resource as a number (mem_mb=4000, disk_mb=10000)"
    if len(message) > 300:
        message = message[:299] + "…"
    raise UserError(f"{path}, line {match['line']}: {message}", hint)


def _prices_said(records: list[dict]) -> str:
    """What the jobs' ``price`` fields are: estimates, as of when, and how many have none."""
    priced = [r["price"] for r in records if "price" in r]
    if not priced:
        return ""
    dates = sorted({p["as_of"] for p in priced if p.get("as_of")})
    missing = sum(p.get("usd_per_hour") is None for p in priced)
    said = "; each price is an estimate (list prices" + (f" as of {dates[0]}" if dates else "")
    said += ", per hour of the job's share of its machine)"
    if missing:
        said += f"; {missing} job(s) have no price (see their price.problem)"
    return said

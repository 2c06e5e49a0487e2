"""`cfw run`: pick the environment, (bring it up,) run Snakemake with cfw's executor,
(download outputs,) and tear down when asked — also after failure, SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cfw.backends.base import StorageSpec
from cfw.core.environments import resolve
from cfw.core.errors import Interrupted, UserError, WorkFailed
from cfw.core.lifecycle import Lifecycle
from cfw.core.report import Reporter
from cfw.core.runs import new_run_id, read_run
from cfw.core.state import EnvState, private_dir
from cfw.executor import explain as explain_mod
from cfw.executor.session import open_context, pick_environment

# options cfw sets unless the user gave them
_JOBS = ("-j", "--jobs")
_STORAGE = ("--default-storage-provider", "--default-storage-prefix")
_IMAGE = ("--container-image",)
_FORBIDDEN = {
    "--executor": "cfw run always uses cfw's executor; choose the environment with --env",
    "-e": "cfw run always uses cfw's executor; choose the environment with --env",
    "--cfw-env": "use `cfw run --env NAME`",
}
INTERRUPT_GRACE = 120.0


@dataclass
class RunRequest:
    env: str | None = None
    up: bool = False
    teardown: bool = False
    explain: bool = False
    download: bool = False
    lock_timeout: float = 0.0
    snakemake_args: list[str] = field(default_factory=list)


def has_flag(args: Sequence[str], names: Sequence[str]) -> bool:
    return any(a in names or any(a.startswith(f"{n}=") for n in names if n.startswith("--"))
               for a in args)


def flag_value(args: Sequence[str], names: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


class Runner:
    def __init__(self, project: Path, reporter: Reporter | None = None,
                 environ: Mapping[str, str] | None = None):
        self.project = Path(project).resolve()
        self.reporter = reporter or Reporter()
        self.environ = dict(os.environ if environ is None else environ)
        self.lifecycle = Lifecycle(self.project, self.reporter, self.environ)

    # -- the command ------------------------------------------------------------------------
    def run(self, req: RunRequest) -> int:
        for arg in req.snakemake_args:
            key = arg.split("=", 1)[0]
            if key in _FORBIDDEN:
                raise UserError(f"cfw run does not take {key}", _FORBIDDEN[key])
        name, why = pick_environment(self.project, req.env)
        resolved = resolve(self.project, name, environ=self.environ,
                           prefer_saved=EnvState(self.project, name).exists)
        if req.explain:
            return self.explain(name, req)
        teardown = req.teardown or resolved.config.teardown == "after-run"
        self.reporter.info(f"environment {name} (kind {resolved.kind.name}; {why})"
                           + ("; it will be torn down after the run" if teardown else ""))
        state = EnvState(self.project, name)
        lock = state.lock("run --teardown", req.lock_timeout) if teardown else contextlib.nullcontext()
        code = 1
        with lock:
            try:
                if req.up:
                    self.lifecycle.up(resolved, locked=teardown)
                code = self._run_snakemake(name, req)
            finally:
                if teardown:
                    self._teardown(name)
        return code

    def _teardown(self, name: str) -> None:
        self.reporter.info(f"tearing down {name}")
        # a second Ctrl-C must not leave the environment half torn down
        with _signals_deferred():
            if not self.lifecycle.down(name, locked=True):
                self.reporter.info(f"{name} was not up; nothing to tear down")

    # -- snakemake --------------------------------------------------------------------------
    def _prepare(self, name: str, run_id: str, req: RunRequest, explain: bool
                 ) -> tuple[list[str], dict[str, str], StorageSpec]:
        kind, ctx = open_context(self.project, name, run_id, explain=explain, environ=self.environ)
        scratch = private_dir(ctx.state_dir)
        storage = kind.storage(ctx.config, ctx.outputs, self.project, self.environ, scratch)
        args = ["--executor", "cfw", "--cfw-env", name, "--cfw-run-id", run_id]
        user = list(req.snakemake_args)
        if not has_flag(user, _STORAGE):
            args += ["--default-storage-provider", storage.provider,
                     "--default-storage-prefix", storage.prefix, *storage.args]
        if not has_flag(user, _JOBS):
            args += ["--jobs", str(ctx.config.jobs or kind.default_jobs)]
        if not has_flag(user, _IMAGE):
            args += ["--container-image", kind.default_image(ctx.config)]
        env = dict(self.environ)
        env.update(storage.env)
        return [*args, *user], env, storage

    def _run_snakemake(self, name: str, req: RunRequest) -> int:
        run_id = new_run_id()
        argv, env, _ = self._prepare(name, run_id, req, explain=False)
        self.reporter.info(f"run {run_id}: snakemake {' '.join(req.snakemake_args) or '(default target)'}")
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", *argv], cwd=self.project,
                                env=env, start_new_session=True)
        code = _wait_forwarding_signals(proc)
        run = read_run(EnvState(self.project, name).runs_dir / run_id)
        if run:
            self.reporter.info(
                f"run {run_id}: {run.done} jobs done, {run.failed} failed"
                + (f"; records in {EnvState(self.project, name).runs_dir / run_id}" if run.failed else "")
            )
        if code == -signal.SIGINT or code == 130 or (run and run.outcome == "interrupted"):
            raise Interrupted(f"run {run_id} was interrupted; its jobs were cancelled")
        if code != 0:
            raise WorkFailed(f"run {run_id} failed (snakemake exited with {code})",
                             "see the messages above; failed jobs' logs were saved where shown")
        return 0

    def explain(self, name: str, req: RunRequest) -> int:
        """Print one JSON object per DAG job: the submission it would get. Submits nothing."""
        argv, env, storage = self._prepare(name, "explain", req, explain=True)
        kind, ctx = open_context(self.project, name, "explain", explain=True, environ=self.environ)
        with tempfile.TemporaryDirectory(prefix="cfw-explain-") as tmp:
            out = Path(tmp) / "jobs.jsonl"
            out.touch()
            env[explain_mod.OUT_VAR] = str(out)
            env[explain_mod.ENV_VAR] = name
            env[explain_mod.CORES_VAR] = flag_value(req.snakemake_args, ("--cores", "-c")) or "all"
            if kind.capabilities.needs_up and not EnvState(self.project, name).exists:
                # not up: the DAG is computed against an empty stand-in storage (everything
                # would run); commands show the storage a real run would use
                env[explain_mod.STORAGE_VAR] = json.dumps(
                    {"provider": storage.provider, "prefix": storage.prefix})
                empty = Path(tmp) / "storage"
                empty.mkdir()
                argv = _replace_storage(argv, "cfw", str(empty))
            proc = subprocess.run(
                [sys.executable, "-m", "cfw.executor.explain", *argv],
                cwd=self.project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, errors="replace", check=False,
            )
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
                print(tail, file=sys.stderr)
                raise WorkFailed("snakemake could not compute the DAG to explain",
                                 "see its messages above")
            lines = out.read_text().splitlines()
        for line in lines:
            print(line)
        self.reporter.info(f"{len(lines)} job(s) explained for environment {name} "
                           f"(kind {kind.name}); nothing was submitted")
        return 0


def _replace_storage(argv: list[str], provider: str, prefix: str) -> list[str]:
    out = list(argv)
    for flag, value in (("--default-storage-provider", provider), ("--default-storage-prefix", prefix)):
        i = out.index(flag)
        out[i + 1] = value
    return out


def _wait_forwarding_signals(proc: subprocess.Popen) -> int:
    """Wait for Snakemake; on SIGINT/SIGTERM ask it to cancel its jobs and wait for that."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        Reporter().info("interrupted: cancelling the run's jobs (this can take a moment)")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        with _signals_deferred():
            try:
                proc.wait(timeout=INTERRUPT_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise


@contextlib.contextmanager
def _signals_deferred():
    """Ignore further SIGINT/SIGTERM while finishing critical work; re-deliver after."""
    pending: list[int] = []

    def remember(signum, _frame):
        pending.append(signum)

    old = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

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
from dataclasses import dataclass, field, replace
from pathlib import Path

from cfw.backends.base import StorageSpec
from cfw.backends.kind import Kind
from cfw.core import smkargs
from cfw.core.environments import resolve
from cfw.core.errors import Interrupted, UserError, WorkFailed
from cfw.core.lifecycle import Lifecycle
from cfw.core.report import Reporter
from cfw.core.runs import new_run_id, read_run, startup_error
from cfw.core.state import CFW_DIR, EnvState, private_dir
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
    return any(
        a in names or any(a.startswith(f"{n}=") for n in names if n.startswith("--")) for a in args
    )


def flag_value(args: Sequence[str], names: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


class Runner:
    def __init__(
        self,
        project: Path,
        reporter: Reporter | None = None,
        environ: Mapping[str, str] | None = None,
    ):
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
        resolved = resolve(
            self.project,
            name,
            environ=self.environ,
            prefer_saved=EnvState(self.project, name).exists,
        )
        # Snakemake's own mistakes, before anything (an --up, say) is done
        checked = smkargs.check(self.project, req.snakemake_args)
        req = replace(req, snakemake_args=checked.args)
        self.environ.update(checked.env)
        if checked.moved:
            self.reporter.info(
                f"{', '.join(checked.moved)} passed to Snakemake in its environment, "
                "not on its command line"
            )
        if req.explain:
            return self.explain(name, req)
        teardown = req.teardown or resolved.config.teardown == "after-run"
        self.reporter.info(
            f"environment {name} (kind {resolved.kind.name}; {why})"
            + ("; it will be torn down after the run" if teardown else "")
        )
        state = EnvState(self.project, name)
        lock = (
            state.lock("run --teardown", req.lock_timeout) if teardown else contextlib.nullcontext()
        )
        code = 1
        with lock:
            try:
                if req.up:
                    self.lifecycle.up(resolved, locked=teardown)
                code = self._run_snakemake(name, req)
            except KeyboardInterrupt:  # SIGINT or SIGTERM; Snakemake cancelled the jobs
                raise Interrupted(
                    "the run was interrupted; its jobs were cancelled"
                    + (f" and {name} is torn down" if teardown else ""),
                ) from None
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
    def _prepare(
        self, name: str, run_id: str, req: RunRequest, explain: bool
    ) -> tuple[Kind, list[str], dict[str, str], StorageSpec]:
        """Snakemake's arguments and environment for a run on ``name``."""
        kind, ctx = open_context(self.project, name, run_id, explain=explain, environ=self.environ)
        scratch = private_dir(ctx.state_dir)
        storage = kind.storage(ctx.config, ctx.outputs, self.project, self.environ, scratch)
        args = ["--executor", "cfw", "--cfw-env", name, "--cfw-run-id", run_id]
        user = list(req.snakemake_args)
        if not has_flag(user, _STORAGE):
            args += [
                "--default-storage-provider",
                storage.provider,
                "--default-storage-prefix",
                storage.prefix,
                *storage.args,
            ]
        if not has_flag(user, _JOBS):
            args += ["--jobs", str(ctx.config.jobs or kind.default_jobs)]
        if not has_flag(user, _IMAGE):
            args += ["--container-image", kind.default_image(ctx.config)]
        env = dict(self.environ)
        env.update(storage.env)
        return kind, [*args, *user], env, storage

    def _run_snakemake(self, name: str, req: RunRequest) -> int:
        run_id = new_run_id()
        kind, argv, env, storage = self._prepare(name, run_id, req, explain=False)
        own_storage = has_flag(req.snakemake_args, _STORAGE)
        remote = not storage.on_this_machine and not own_storage
        collected = self._collect(name, req) if remote else {}
        if remote:
            self._upload_inputs(collected.get("inputs", []), storage, env)
        self.reporter.info(
            f"run {run_id}: snakemake "
            + (" ".join(smkargs.redact(req.snakemake_args)) or "(default target)")
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *argv],
            cwd=self.project,
            env=env,
            start_new_session=True,
        )
        code = _wait_forwarding_signals(proc)
        run_dir = EnvState(self.project, name).runs_dir / run_id
        failed_start = startup_error(run_dir)
        if code != 0 and failed_start:
            error = UserError if failed_start["type"] == "UserError" else WorkFailed
            raise error(failed_start["message"], failed_start.get("hint"))
        run = read_run(run_dir)
        if run:
            self.reporter.info(
                f"run {run_id}: {run.done} jobs done, {run.failed} failed"
                + (
                    f"; records in {EnvState(self.project, name).runs_dir / run_id}"
                    if run.failed
                    else ""
                )
            )
        if code == -signal.SIGINT or code == 130 or (run and run.outcome == "interrupted"):
            raise Interrupted(f"run {run_id} was interrupted; its jobs were cancelled")
        if code != 0 and not (run and (run.done or run.failed)):
            raise WorkFailed(
                f"run {run_id} failed before any job ran (snakemake exited with {code})",
                "see Snakemake's message above",
            )
        if code != 0:
            raise WorkFailed(
                f"run {run_id} failed (snakemake exited with {code})",
                "see the messages above; failed jobs' logs were saved where shown",
            )
        if remote and (req.download or kind.capabilities.local_outputs):
            self._download(collected.get("targets", []), storage, env)
        elif remote:
            self.reporter.info(
                f"outputs are in {storage.prefix}; `cfw run --download` "
                "fetches the requested targets"
            )
        return 0

    # -- files between this machine and a remote storage ------------------------------------
    def _collect(self, name: str, req: RunRequest) -> dict:
        """The DAG's external inputs and targets, computed with the workflow directory as the
        storage and every job forced, so that nothing depends on what the bucket holds."""
        _, argv, env, _ = self._prepare(name, "collect", req, explain=True)
        argv = [*_replace_storage(argv, "cfw", str(self.project)), "--forceall"]
        with tempfile.TemporaryDirectory(prefix="cfw-collect-") as tmp:
            out = Path(tmp) / "collect.json"
            env[explain_mod.COLLECT_VAR] = str(out)
            env[explain_mod.OUT_VAR] = os.devnull
            env[explain_mod.ENV_VAR] = name
            proc = self._dry_run(argv, env)
            if not out.exists():
                print("\n".join(proc.stdout.strip().splitlines()[-15:]), file=sys.stderr)
                raise WorkFailed(
                    "snakemake could not compute the workflow's DAG", "see its messages above"
                )
            return json.loads(out.read_text())

    def _dry_run(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
        """Snakemake's dry-run with cfw's explaining executor (cfw/executor/explain.py)."""
        return subprocess.run(
            [sys.executable, "-m", "cfw.executor.explain", *argv],
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )

    def _relative(self, query: str) -> str | None:
        try:
            return str(Path(query).resolve().relative_to(self.project))
        except ValueError:
            return None

    def _upload_inputs(self, inputs: list[str], storage: StorageSpec, env: dict[str, str]) -> None:
        # snakemake-storage-plugin-s3 deletes a bucket that a removal leaves empty (say,
        # the source archive's cleanup): a marker object below the prefix keeps it
        marker = self.project / CFW_DIR / "keep-marker.txt"
        marker.parent.mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            marker.write_text("kept by cfw: a storage plugin deletes buckets that become empty\n")
        pairs = [f"{marker}={storage.query('.cfw-keep')}"]
        for query in inputs:
            rel = self._relative(query)
            if rel and (self.project / rel).is_file():
                pairs.append(f"{self.project / rel}={storage.query(rel)}")
        if len(pairs) > 1:
            self.reporter.info(f"staging {len(pairs) - 1} input file(s) to {storage.prefix}")
        self._transfer("put", pairs, storage, env)

    def _download(self, targets: list[str], storage: StorageSpec, env: dict[str, str]) -> None:
        pairs = [
            f"{storage.query(rel)}={self.project / rel}"
            for rel in filter(None, map(self._relative, targets))
        ]
        if pairs:
            self.reporter.info(f"downloading {len(pairs)} target(s) from {storage.prefix}")
            self._transfer("get", pairs, storage, env)

    def _transfer(
        self, mode: str, pairs: list[str], storage: StorageSpec, env: dict[str, str]
    ) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "cfw.executor.stage", mode, *pairs, "--", *storage.cli_args()],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        if proc.returncode != 0:
            print("\n".join(proc.stderr.strip().splitlines()[-10:]), file=sys.stderr)
            verb = "upload the inputs to" if mode == "put" else "download the targets from"
            raise WorkFailed(f"could not {verb} {storage.prefix}", "see the messages above")

    def explain(self, name: str, req: RunRequest) -> int:
        """Print one JSON object per DAG job: the submission it would get. Submits nothing."""
        kind, argv, env, storage = self._prepare(name, "explain", req, explain=True)
        with tempfile.TemporaryDirectory(prefix="cfw-explain-") as tmp:
            out = Path(tmp) / "jobs.jsonl"
            out.touch()
            env[explain_mod.OUT_VAR] = str(out)
            env[explain_mod.ENV_VAR] = name
            env[explain_mod.CORES_VAR] = flag_value(req.snakemake_args, ("--cores", "-c")) or "all"
            if not storage.on_this_machine and not has_flag(req.snakemake_args, _STORAGE):
                # a remote storage (perhaps not even created yet): the DAG is computed from
                # the workflow directory, as `cfw run` stages it; the commands show the
                # storage a real run uses
                env[explain_mod.STORAGE_VAR] = json.dumps(
                    {"provider": storage.provider, "prefix": storage.prefix}
                )
                argv = _replace_storage(argv, "cfw", str(self.project))
            proc = self._dry_run(argv, env)
            if proc.returncode != 0:
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
            f"(kind {kind.name}); nothing was submitted"
        )
        if not records:  # said even under --explain's quiet output: stdout is empty
            self.reporter.warn(f"{summary}: Snakemake has nothing to do (use --forceall?)")
        else:
            self.reporter.info(summary)
        if refused:
            first = refused[0]
            error = first[explain_mod.ERROR]
            raise UserError(
                f"{len(refused)} job(s) cannot be submitted to {name}; "
                f"rule {first['rule']} (job {first['jobid']}): {error['message']}",
                error.get("hint") or "change the rule's resources or the environment's config",
            )
        return 0


def _replace_storage(argv: list[str], provider: str, prefix: str) -> list[str]:
    out = list(argv)
    for flag, value in (
        ("--default-storage-provider", provider),
        ("--default-storage-prefix", prefix),
    ):
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
    """Ignore SIGINT/SIGTERM while finishing the work a first one asked for (cancelling
    jobs, tearing down): a second Ctrl-C must not cut that short, and is not re-delivered."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

"""`cfw run`: pick the environment, (bring it up,) run Snakemake with cfw's executor,
(download outputs,) and tear down when asked — also after failure, SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cfw.backends.registry import resolve
from cfw.core import heartbeat, snakemake_args
from cfw.core.claims import Busy, Claims
from cfw.core.errors import Interrupted, UserError, WorkFailed
from cfw.core.records import RunInfo, new_run_id, read_run, startup_error
from cfw.core.report import Reporter
from cfw.core.state import PHASE_UP, EnvState, private_dir
from cfw.executor.retry import summary_said
from cfw.executor.session import open_context, pick_environment
from cfw.orchestration import account as accounting
from cfw.orchestration import costs
from cfw.orchestration import explain as explaining
from cfw.orchestration.invocation import Prepared
from cfw.orchestration.lifecycle import Lifecycle
from cfw.orchestration.signals import signals_deferred, wait_forwarding_signals
from cfw.orchestration.transfer import Transfer


@dataclass
class RunRequest:
    env: str | None = None
    up: bool = False
    teardown: bool = False
    explain: bool = False
    download: bool = False
    lock_timeout: float = 0.0
    snakemake_args: list[str] = field(default_factory=list)
    budget: float | None = None  # US dollars; else the environment's budget_usd


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
        self.transfer = Transfer(self.project, self.reporter)

    # -- the command ------------------------------------------------------------------------
    def run(self, req: RunRequest) -> int:
        snakemake_args.refuse_forbidden(req.snakemake_args)
        if req.budget is not None and not (math.isfinite(req.budget) and req.budget > 0):
            raise UserError(
                f"--budget {req.budget:g}: a budget is an amount of US dollars above 0",
                "for example --budget 25",
            )
        name, why = pick_environment(self.project, req.env)
        resolved = resolve(
            self.project,
            name,
            environ=self.environ,
            prefer_saved=EnvState(self.project, name).exists,
        )
        # Snakemake's own mistakes, before anything (an --up, say) is done
        checked = snakemake_args.check(self.project, req.snakemake_args)
        req = replace(req, snakemake_args=checked.args)
        self.environ.update(checked.env)
        if checked.moved:
            self.reporter.info(
                f"{', '.join(checked.moved)} passed to Snakemake in its environment, "
                "not on its command line"
            )
        if req.explain:
            with explaining.no_empty_dirs_left(EnvState(self.project, name).root):
                prepared = self.prepare(name, "explain", req, explain=True)
                return explaining.explain(
                    self.project, self.reporter, name, prepared, req.snakemake_args
                )
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
                    self._teardown(name, req.lock_timeout)
        return code

    def _teardown(self, name: str, lock_timeout: float = 0.0) -> None:
        self.reporter.info(f"tearing down {name}")
        # a second Ctrl-C must not leave the environment half torn down
        with signals_deferred():
            try:
                gone = self.lifecycle.down(
                    name, lock_timeout, locked=True, operation="run --teardown"
                )
            except Busy as exc:  # another run uses it: the run's own outcome stands
                raise WorkFailed(
                    f"{name} is not torn down: {exc.message.partition(': ')[2]}",
                    f"run `cfw down {name}` once that run has ended",
                ) from None
            if not gone:
                self.reporter.info(f"{name} was not up; nothing to tear down")

    # -- snakemake --------------------------------------------------------------------------
    def prepare(self, name: str, run_id: str, req: RunRequest, explain: bool) -> Prepared:
        """Snakemake's arguments and environment for a run on ``name``."""
        kind, ctx = open_context(
            self.project,
            name,
            run_id,
            explain=explain,
            environ=self.environ,
            attach=self.lifecycle.attach,
        )
        scratch = private_dir(ctx.state_dir)
        storage = kind.storage(ctx.config, ctx.outputs, self.project, self.environ, scratch)
        args = ["--executor", "cfw", "--cfw-env", name, "--cfw-run-id", run_id]
        if req.budget is not None:
            args += ["--cfw-budget", repr(float(req.budget))]
        user = list(req.snakemake_args)
        if not snakemake_args.has_flag(user, snakemake_args.STORAGE):
            args += storage.cli_args()
        if not snakemake_args.has_flag(user, snakemake_args.JOBS):
            args += ["--jobs", str(ctx.config.jobs or kind.default_jobs)]
        if not snakemake_args.has_flag(user, snakemake_args.IMAGE):
            args += ["--container-image", kind.default_image(ctx.config)]
        env = dict(self.environ)
        env.update(storage.env)
        return Prepared(kind, [*args, *user], env, storage)

    def _run_snakemake(self, name: str, req: RunRequest) -> int:
        run_id = new_run_id()
        prepared = self.prepare(name, run_id, req, explain=False)
        storage, env = prepared.storage, prepared.env
        own_storage = snakemake_args.has_flag(req.snakemake_args, snakemake_args.STORAGE)
        remote = not storage.on_this_machine and not own_storage
        collected = (
            explaining.collect(self.project, name, self.prepare(name, "collect", req, True))
            if remote
            else {}
        )
        if remote:
            self.transfer.upload_inputs(collected.get("inputs", []), storage, env)
        run_dir = EnvState(self.project, name).runs_dir / run_id
        passthrough = accounting.passthrough_wanted(req.snakemake_args)
        verbose = passthrough or accounting.verbose_wanted(req.snakemake_args, env)
        self.reporter.info(
            f"run {run_id}: snakemake "
            + (" ".join(snakemake_args.redact(req.snakemake_args)) or "(default target)")
            + ("" if verbose else f"; its output goes to {accounting.shown(run_dir, self.project)}")
        )
        account = accounting.Account(self.reporter, run_dir, run_id, lines=not verbose)
        # the run's claim on the environment: `down` and `--teardown` elsewhere wait for it
        claim = Claims(EnvState(self.project, name).dir, name).shared(run_id, heartbeat.owner())
        with claim as claim_fd:
            launched = accounting.Launched(
                [sys.executable, "-m", "snakemake", *prepared.argv],
                self.project,
                env,
                run_dir,
                verbose,
                passthrough,
                pass_fds=(claim_fd,),
            )
            try:
                view = self.reporter.run_view(account, name) if not verbose else None
                with view or contextlib.nullcontext():
                    code = wait_forwarding_signals(launched.proc, tick=account.poll)
                    account.poll()
            except KeyboardInterrupt:
                launched.close()
                self._end_account(account, read_run(run_dir))
                raise
            launched.close()
        failed_start = startup_error(run_dir)
        if code != 0 and failed_start:
            error = UserError if failed_start["type"] == "UserError" else WorkFailed
            raise error(failed_start["message"], failed_start.get("hint"))
        run = read_run(run_dir)
        self._end_account(account, run)
        if run:
            self._report_cost(run_id, run)
        if code != 0 and prepared.kind.capabilities.needs_up and not self._still_up(name):
            raise WorkFailed(
                f"run {run_id} failed: environment {name} was torn down while it ran",
                f"bring it up again with `cfw up {name}` and rerun",
            )
        if code == -signal.SIGINT or code == 130 or (run and run.outcome == "interrupted"):
            raise Interrupted(f"run {run_id} was interrupted; its jobs were cancelled")
        if code != 0 and not (run and (run.done or run.failed)):
            self._snakefile_mistake(account)
            self._snakemake_said(account, verbose)
            raise WorkFailed(
                f"run {run_id} failed before any job ran (snakemake exited with {code})",
                f"see Snakemake's message above; its whole output is in {account.log_path}",
            )
        if code != 0:
            if not (run and run.failed):
                self._snakemake_said(account, verbose)
            raise WorkFailed(
                f"run {run_id} failed (snakemake exited with {code})",
                "see the messages above; failed jobs' logs were saved where shown, "
                f"Snakemake's output in {account.log_path}",
            )
        if remote and (req.download or prepared.kind.capabilities.local_outputs):
            self.transfer.download(collected.get("targets", []), storage, env)
        elif remote:
            self.reporter.info(
                f"outputs are in {storage.prefix}; `cfw run --download` "
                "fetches the requested targets"
            )
        return 0

    def _still_up(self, name: str) -> bool:
        with contextlib.suppress(UserError):
            meta = EnvState(self.project, name).meta()
            return meta is not None and meta.phase == PHASE_UP
        return False

    def _end_account(self, account: accounting.Account, run: RunInfo | None) -> None:
        """The jobs that ended since the last look, then the run's counts and table."""
        account.poll()
        if run is None:
            return
        cancelled = sum(t.cancelled for t in account.rules.values())
        self.reporter.info(
            f"run {run.run_id}: {run.done} jobs done, {run.failed} failed"
            + (f", {cancelled} cancelled" if cancelled else "")
            + summary_said(run.extra.get("spot"))  # preemptions, on-demand fallbacks
            + (f"; records in {account.run_dir}" if run.failed or cancelled else "")
        )
        table = account.summary()
        if table:
            self.reporter.raw("\n".join(table))

    def _snakefile_mistake(self, account: accounting.Account) -> None:
        """A Snakefile Snakemake could not read (a resource it cannot parse): the user's
        mistake, said in one line with its fix (exit 2), as `--explain` says it."""
        try:
            said = account.log_path.read_text(errors="replace")
        except OSError:
            return
        explaining.snakefile_mistake(self.project, said)

    def _snakemake_said(self, account: accounting.Account, verbose: bool) -> None:
        """Snakemake's own error, when no failed job explains the failure."""
        if verbose:
            return
        lines = account.snakemake_error()
        if lines:
            self.reporter.warn(f"Snakemake's last words ({account.log_path}):")
            self.reporter.raw("\n".join(f"    | {line}" for line in lines))

    def _report_cost(self, run_id: str, run: RunInfo) -> None:
        """The run's estimated cost; a budget that stopped it is the run's outcome."""
        for line in costs.run_lines(run_id, run.cost):
            self.reporter.info(line)
        if run.outcome == "budget":
            raise WorkFailed(costs.budget_line(run_id, run.cost) or f"a budget stopped {run_id}")
        passed = costs.budget_line(run_id, run.cost, stopped=False)
        if passed:
            self.reporter.warn(passed)

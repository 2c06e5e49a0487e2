"""The local backend: each job a process in a fresh sandbox directory on this machine."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.local import client

KEEP_FAILED_DAYS = 7  # how long the sandboxes of failed jobs are kept for debugging


def prune_kept_sandboxes(root: Path, days: float = KEEP_FAILED_DAYS, now: float | None = None):
    """Remove the run directories under ROOT (failed jobs' sandboxes, kept for debugging)
    untouched for DAYS; returns what was removed."""
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = []
    try:
        runs = list(root.iterdir())
    except OSError:
        return removed
    for run in runs:
        try:
            if run.is_dir() and not run.is_symlink() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)
                removed.append(run)
        except OSError:
            continue
    return removed


class LocalBackend(Backend):
    def __init__(self, ctx: EnvContext):
        super().__init__(ctx)
        self.sandbox_root = Path(ctx.outputs["sandbox_root"])
        if not ctx.explain:
            prune_kept_sandboxes(self.sandbox_root)
        self.procs: dict[str, client.Proc] = {}
        self.cpus = client.CpuPool()
        self.changed = threading.Event()
        self._lock = threading.Lock()

    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        sandbox = Path(payload["sandbox"])
        limits = payload["limits"]
        cpus = self.cpus.take(limits["threads"])
        log = self.ctx.run_dir / "jobs" / f"{payload['name']}-a{spec.attempt}.out"
        env = client.job_environment(sandbox, secrets, self.ctx.config.pass_env)
        popen = client.start(payload["argv"], sandbox, env, log, cpus, payload["launcher"])
        external_id = f"{payload['name']}-a{spec.attempt}"
        proc = client.Proc(
            popen=popen,
            sandbox=sandbox,
            log=log,
            started=time.monotonic(),
            mem_mb=limits["mem_mb"],
            runtime_s=limits["runtime_s"],
            cpus=cpus,
            keep=payload["keep_sandbox"],
        )
        with self._lock:
            self.procs[external_id] = proc
        threading.Thread(target=self._reap, args=(proc,), daemon=True).start()
        return external_id

    def _reap(self, proc: client.Proc) -> None:
        proc.popen.wait()
        proc.finished.set()
        self.changed.set()

    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        with self._lock:
            procs = {i: self.procs[i] for i in external_ids if i in self.procs}
        self._enforce_limits([p for p in procs.values() if not p.finished.is_set()])
        result: dict[str, JobStatus] = {}
        for ext_id in external_ids:
            proc = procs.get(ext_id)
            if proc is None:
                result[ext_id] = JobStatus(JobState.FAILED, reason="unknown to this run")
                continue
            code = proc.popen.poll()
            if code is None:
                result[ext_id] = JobStatus(JobState.RUNNING)
                continue
            result[ext_id] = self._finished(proc, code)
        return result

    def _finished(self, proc: client.Proc, code: int) -> JobStatus:
        if proc.cpus:
            self.cpus.give(proc.cpus)
            proc.cpus = []
        ok = code == 0 and proc.killed_reason is None
        keep = proc.keep == "always" or (proc.keep == "on-failure" and not ok)
        if not keep:
            client.remove_tree(proc.sandbox)
        if ok:
            return JobStatus(JobState.SUCCEEDED, exit_code=0)
        if proc.killed_reason:
            reason = proc.killed_reason
        elif code < 0:
            reason = f"killed by signal {-code}"
        else:
            reason = f"exit code {code}"
        if keep:
            reason += f"; sandbox kept at {proc.sandbox}"
        return JobStatus(JobState.FAILED, reason=reason, exit_code=code)

    def _enforce_limits(self, running: list[client.Proc]) -> None:
        limited = [p for p in running if p.mem_mb]
        usage = client.sessions_memory_mb({p.popen.pid for p in limited}) if limited else {}
        for proc in running:
            if proc.killed_reason:
                continue
            used = usage.get(proc.popen.pid, 0.0)
            proc.peak_mb = max(proc.peak_mb, used)
            if proc.mem_mb and used > proc.mem_mb:
                proc.killed_reason = (
                    f"out of memory: used {used:.0f} MB, more than mem_mb={proc.mem_mb}"
                )
            elif proc.runtime_s and client.elapsed(proc) > proc.runtime_s:
                proc.killed_reason = f"exceeded its runtime of {proc.runtime_s // 60} min"
            if proc.killed_reason:
                client.stop(proc.popen, grace=2.0)

    def cancel(self, external_ids: Sequence[str]) -> None:
        with self._lock:
            procs = [self.procs[i] for i in external_ids if i in self.procs]
        for proc in procs:
            if proc.killed_reason is None and proc.popen.poll() is None:
                proc.killed_reason = "cancelled"
            client.stop(proc.popen)

    def logs(self, external_id: str) -> str:
        proc = self.procs.get(external_id)
        path = proc.log if proc else self.ctx.run_dir / "jobs" / f"{external_id}.out"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_for_change(self, timeout: float) -> None:
        """Wake the status loop as soon as a job ends (poll at least every second)."""
        await asyncio.to_thread(self.changed.wait, min(timeout, 1.0))
        self.changed.clear()

    def close(self) -> None:
        with self._lock:
            running = [i for i, p in self.procs.items() if p.popen.poll() is None]
        self.cancel(running)
        run_root = self.sandbox_root / self.ctx.run_id
        if run_root.is_dir() and not any(run_root.iterdir()):
            run_root.rmdir()

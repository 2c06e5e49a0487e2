"""The local backend: each job a process in a fresh sandbox directory on this machine."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobStatus
from cfw.backends.local import client, guard
from cfw.backends.local.config import LocalConfig
from cfw.backends.local.status import (
    RUNNING,
    UNKNOWN,
    finished_status,
    keeps_sandbox,
    limit_exceeded,
    succeeded,
)


class LocalBackend(Backend[LocalConfig]):
    def __init__(self, ctx: EnvContext[LocalConfig]):
        super().__init__(ctx)
        self.sandbox_root = Path(ctx.outputs["sandbox_root"])
        if not ctx.explain:
            client.prune_kept_sandboxes(self.sandbox_root)
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
        # found by `cfw cancel` and the guard if this runner dies (local/guard.py)
        guard.record_job(self.ctx.run_dir, external_id, popen.pid)
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
            code = None if proc is None else proc.popen.poll()
            if proc is None:
                result[ext_id] = UNKNOWN
            elif code is None:
                result[ext_id] = RUNNING
            else:
                result[ext_id] = self._finished(proc, code)
        return result

    def _finished(self, proc: client.Proc, code: int) -> JobStatus:
        if proc.cpus:
            self.cpus.give(proc.cpus)
            proc.cpus = []
        keep = keeps_sandbox(proc.keep, succeeded(code, proc.killed_reason))
        if not keep:
            client.remove_tree(proc.sandbox)
        return finished_status(code, proc.killed_reason, proc.sandbox if keep else None)

    def _enforce_limits(self, running: list[client.Proc]) -> None:
        limited = [p for p in running if p.mem_mb]
        usage = client.sessions_memory_mb({p.popen.pid for p in limited}) if limited else {}
        for proc in running:
            if proc.killed_reason:
                continue
            used = usage.get(proc.popen.pid, 0.0)
            proc.peak_mb = max(proc.peak_mb, used)
            proc.killed_reason = limit_exceeded(
                used, proc.mem_mb, client.elapsed(proc), proc.runtime_s
            )
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

"""`cfw guard NAME --once`, `cfw cancel NAME [RUN]` and the runs `cfw status` shows: the
guard's check and its cancel, run from this machine through the kind's adapter
(Kind.guard_adapter; cfw.core.guard_check).

A run's runner is gone when its heartbeat is older than guard.orphan_after, or, seen from the
machine it ran on, when its process is no more (a SIGKILLed `cfw run` on this machine is
known gone at once, without waiting for its heartbeat to age).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cfw.backends.base import EnvContext
from cfw.backends.kind import Kind
from cfw.core import heartbeat
from cfw.core.claims import Busy
from cfw.core.errors import UserError
from cfw.core.guard import CANCEL, Action, GuardRecord, Job, Unreadable, assess_runs
from cfw.core.guard_check import Adapter, Outcome, check, describe_cancel
from cfw.core.heartbeat import Heartbeat
from cfw.core.procs import process_alive
from cfw.core.report import Reporter
from cfw.core.state import PHASE_UP, EnvState, parse_time


@dataclass(frozen=True)
class RunLine:
    """One run on the environment as `cfw status` and `cfw cancel` see it."""

    run_id: str
    owner: str
    age_s: int | None  # since its heartbeat was last written; None: no heartbeat
    live: bool  # its runner is alive (heartbeat fresh and, on this machine, its process)
    gone: str  # why its runner is taken for gone; "" when live
    jobs: tuple[str, ...] = ()


@dataclass
class Guarded:
    """An environment opened for the guard: its kind, context and adapter."""

    kind: Kind
    ctx: EnvContext
    adapter: Adapter
    expires_at: datetime | None


def open_guarded(project: Path, name: str, environ: Mapping[str, str]) -> Guarded:
    guarded = find_guarded(project, name, environ)
    if guarded is None:
        from cfw.executor.session import open_context  # Snakemake's interfaces: when used

        kind, _ = open_context(project, name, "guard", environ=environ)
        raise UserError(
            f"kind {kind.name} has no guard adapter: cfw cannot list or cancel its jobs",
            "cancel them with the service's own tools",
        )
    return guarded


def find_guarded(project: Path, name: str, environ: Mapping[str, str]) -> Guarded | None:
    """The environment opened for the guard; None when its kind has no guard adapter."""
    state = EnvState(project, name)
    from cfw.executor.session import open_context

    kind, ctx = open_context(project, name, "guard", environ=environ)
    adapter = kind.guard_adapter(ctx, environ)
    if adapter is None:
        return None
    meta = state.meta()
    expires = parse_time(meta.expires_at) if meta and meta.phase == PHASE_UP else None
    return Guarded(kind, ctx, adapter, expires)


def run_lines(adapter: Adapter, orphan_after: timedelta, now: datetime) -> list[RunLine]:
    """Every run with a heartbeat or an active job, live or gone."""
    return lines_of(stored_beats(adapter), adapter.jobs(), orphan_after, now)


def stored_beats(adapter: Adapter) -> list[heartbeat.Stored]:
    """The heartbeats; none where the kind keeps none (its adapter has no store)."""
    if adapter.store is None:
        return []
    return heartbeat.read_all(adapter.store, adapter.prefix)


def _needs_heartbeats(guarded: Guarded, what: str) -> None:
    if guarded.adapter.store is None:
        raise UserError(
            f"kind {guarded.kind.name} keeps no run heartbeats yet: {what} cannot tell a live "
            "run from one whose runner is gone",
            f"name the run: `cfw cancel {guarded.ctx.name} RUN` (runs: `cfw status "
            f"{guarded.ctx.name}`)",
        )


def lines_of(
    stored: list[heartbeat.Stored], jobs: list[Job], orphan_after: timedelta, now: datetime
) -> list[RunLine]:
    records = {s.run_id: s.record for s in stored}
    views = assess_runs([s.beat for s in stored], jobs, now=now, orphan_after=orphan_after)
    lines = []
    beats = {s.run_id: s for s in stored}
    for view in views:
        record = records.get(view.run_id)
        age = None
        if view.run_id in beats:
            age = max(int((now - beats[view.run_id].last_modified).total_seconds()), 0)
        gone = ""
        if not view.live:
            gone = (
                f"no heartbeat for {_human(view.age)}"
                if view.heartbeat
                else f"no heartbeat, newest job {_human(view.age)} old"
            )
        elif isinstance(record, Heartbeat) and _dead_here(record):
            gone = f"its runner (pid {record.pid} on this machine) is gone"
        lines.append(RunLine(view.run_id, view.owner, age, not gone, gone, view.job_ids))
    return lines


def cancel(
    project: Path,
    name: str,
    run_id: str | None,
    reporter: Reporter,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Cancel RUN's jobs (by its label), or without RUN those of every run whose runner is
    gone; idempotent. Returns the ids cancelled."""
    environ = dict(os.environ if environ is None else environ)
    if run_id is not None and not heartbeat.RUN_ID_RE.match(run_id):
        raise UserError(f"{run_id[:40]!r} is not a run id", "see `cfw status NAME` for its runs")
    guarded = open_guarded(project, name, environ)
    adapter = guarded.adapter
    orphan_after = guarded.ctx.config.guard.orphan_after
    now = datetime.now(UTC)
    lines = run_lines(adapter, orphan_after, now)
    if run_id is not None:
        targets = [line for line in lines if line.run_id == run_id]
        if not targets:
            reporter.info(f"run {run_id} has no active job on {name}: nothing to cancel")
            return []
    else:
        _needs_heartbeats(guarded, "`cfw cancel` without RUN")
        targets = [line for line in lines if not line.live]
        if not targets:
            live = [line.run_id for line in lines]
            reporter.info(
                f"no run on {name} has lost its runner: nothing to cancel"
                + (f" ({len(live)} live: {', '.join(live)}; name one to cancel it)" if live else "")
            )
            return []
    cancelled: list[str] = []
    for line in targets:
        why = "cancelled by `cfw cancel`" + (f" ({line.gone})" if line.gone else "")
        action = Action(CANCEL, "cancel", why, line.run_id, line.jobs)
        ids = list(adapter.cancel(action)) if line.jobs else []
        cancelled += ids
        reporter.info(describe_cancel(action, ids).removeprefix("cancel: "))
        if not line.live and adapter.store is not None:  # its runner will not remove it
            heartbeat.remove(adapter.store, adapter.prefix, line.run_id)
    return cancelled


def guard_once(
    project: Path,
    name: str,
    dry_run: bool,
    reporter: Reporter,
    environ: Mapping[str, str] | None = None,
) -> Outcome:
    """One guard check of NAME from this machine (the check the cloud guard runs)."""
    environ = dict(os.environ if environ is None else environ)
    guarded = open_guarded(project, name, environ)
    _needs_heartbeats(guarded, "`cfw guard --once`")
    settings = guarded.ctx.config.guard.settings(guarded.expires_at)
    outcome = check(guarded.adapter, settings, datetime.now(UTC), dry_run=dry_run)
    for note in outcome.decision.notes:
        reporter.info(note)
    for run in outcome.decision.runs:
        state = "live" if run.live else "stale"
        who = f" ({run.owner})" if run.owner else ""
        reporter.info(
            f"run {run.run_id}{who}: {state}, last sign of life {_human(run.age)} ago, "
            f"{len(run.job_ids)} active job(s)"
        )
    for line in outcome.done:
        reporter.info(line)
    if not outcome.decision.actions:
        reporter.info(f"{name}: nothing to do")
    return outcome


def guard_record(adapter: Adapter) -> GuardRecord | Unreadable | None:
    return heartbeat.read_record(adapter.store, adapter.prefix)


def _dead_here(record: Heartbeat) -> bool:
    """Its runner ran on this machine as this user and its process is no more."""
    if record.owner != heartbeat.owner():
        return False
    return not process_alive(record.pid)


def _human(value: timedelta) -> str:
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def status_view(project: Path, name: str, environ: Mapping[str, str]) -> dict:
    """What `cfw status NAME` shows of the guard: the active runs (heartbeat age, runner
    gone or not), the active jobs the adapter counts, and the guard's record; empty when
    the kind has no guard adapter."""
    guarded = find_guarded(project, name, environ)
    if guarded is None:
        return {}
    adapter = guarded.adapter
    now = datetime.now(UTC)
    jobs = adapter.jobs()
    lines = lines_of(stored_beats(adapter), jobs, guarded.ctx.config.guard.orphan_after, now)
    record = guard_record(adapter) if adapter.store is not None else None
    shown: dict | None = None
    if isinstance(record, GuardRecord):
        last = [e for e in record.history if e.at == record.checked_at and e.action != "noted"]
        shown = {
            "checked_at": _iso(record.checked_at),
            "stopped_at": _iso(record.stopped_at),
            "stopped_cause": record.stopped_cause,
            "last_actions": [f"{e.action} ({e.cause}): {e.reason}" for e in last],
            "history": [
                {"at": _iso(e.at), "action": e.action, "cause": e.cause, "reason": e.reason}
                for e in record.history[-5:]
            ],
        }
    elif isinstance(record, Unreadable):
        shown = {"error": f"the guard's record is unreadable: {record.problem}"}
    return {
        "runs": [
            {
                "run_id": line.run_id,
                "owner": line.owner,
                "heartbeat_age_s": line.age_s,
                "live": line.live,
                "gone": line.gone,
                "jobs": len(line.jobs),
            }
            for line in lines
        ],
        "jobs_active": len(jobs),
        "guard": shown,
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def say_runs(reporter: Reporter, name: str, runs: list[dict], guard: dict | None) -> None:
    """`cfw status NAME`'s lines on its runs and its guard."""
    for run in runs:
        age = run["heartbeat_age_s"]
        beat = (
            f"heartbeat {_human(timedelta(seconds=age))} ago" if age is not None else "no heartbeat"
        )
        who = f" ({run['owner']})" if run["owner"] else ""
        line = f"{name}: run {run['run_id']}{who}: {beat}, {run['jobs']} active job(s)"
        if run["live"]:
            reporter.info(line)
        else:
            reporter.warn(
                f"{line}; runner gone ({run['gone']}): "
                f"`cfw cancel {name} {run['run_id']}` cancels its jobs"
            )
    if not guard:
        return
    if "error" in guard:
        reporter.warn(f"{name}: guard: {guard['error']}")
        return
    stopped = (
        f"; what bills is stopped since {guard['stopped_at']} ({guard['stopped_cause']})"
        if guard.get("stopped_at")
        else ""
    )
    reporter.info(f"{name}: guard: last check {guard['checked_at']}{stopped}")
    for action in guard.get("last_actions") or []:
        reporter.info(f"{name}: guard did: {action}")


DOWN_WAIT_S = 300.0  # how long `down` waits for cancelled jobs to be gone


def cancel_every_job(
    kind: Kind,
    ctx: EnvContext,
    environ: Mapping[str, str],
    reporter: Reporter,
    wait_s: float = DOWN_WAIT_S,
    sleep=None,
    operation: str = "down",
) -> int:
    """`cfw down`, before Terraform destroys what jobs run on: every active job of every
    run is cancelled (through the kind's adapter, the same path as `cfw cancel`) and
    confirmed gone. Returns how many were cancelled; WorkFailed if some stay."""
    import time

    from cfw.core.errors import CfwError, WorkFailed

    sleep = sleep or time.sleep
    try:
        adapter = kind.guard_adapter(ctx, environ)
        if adapter is None:
            return 0
        jobs = adapter.jobs()
        stored = stored_beats(adapter)
    except CfwError as exc:
        raise WorkFailed(
            f"could not list the jobs still running on {ctx.name}: {exc.message}",
            f"fix the cause and run `cfw down {ctx.name}` again; nothing was destroyed",
        ) from exc
    orphan_after = ctx.config.guard.orphan_after
    lines = lines_of(stored, jobs, orphan_after, datetime.now(UTC))
    # a run elsewhere whose heartbeat is fresh (runs here hold a claim, checked before);
    # jobs with no heartbeat are cancelled like any other
    live = [line for line in lines if line.live and line.age_s is not None]
    if live:
        shown = ", ".join(
            f"run {line.run_id} ({line.owner or 'unknown'}, heartbeat "
            f"{_human(timedelta(seconds=line.age_s or 0))} ago)"
            for line in live[:3]
        )
        raise Busy(
            f"not running `cfw {operation}`: environment {ctx.name!r} is in use by {shown}",
            f"wait for it to end, or `cfw cancel {ctx.name} RUN` to stop it first",
        )
    if not jobs:
        return 0
    reporter.info(f"cancelling {len(jobs)} job(s) still running on {ctx.name}")
    by_run: dict[str | None, list[str]] = {}
    for job in jobs:
        by_run.setdefault(job.run_id, []).append(job.job_id)
    cancelled = 0
    for run_id, ids in sorted(by_run.items(), key=lambda item: item[0] or ""):
        action = Action(CANCEL, "down", "cfw down", run_id, tuple(sorted(ids)))
        done = list(adapter.cancel(action))
        cancelled += len(done)
        reporter.info(describe_cancel(action, done).removeprefix("down: "))
    deadline = time.monotonic() + wait_s
    while True:
        left = adapter.jobs()
        if not left:
            return cancelled
        if time.monotonic() >= deadline:
            names = ", ".join(sorted(j.job_id for j in left)[:5])
            raise WorkFailed(
                f"{len(left)} job(s) of {ctx.name} are still there after cancelling: {names}",
                f"run `cfw down {ctx.name}` again; nothing was destroyed",
            )
        sleep(2.0)


def unguarded_line(kind: Kind, config, name: str) -> str | None:
    """What `cfw up` says when a cloud kind's guard is switched off; None otherwise."""
    if not kind.capabilities.needs_up or config.guard.enabled:
        return None
    ttl = " or enforces its ttl" if config.ttl else ""
    return (
        f"guard.enabled is false: nothing cloud-side cancels the jobs of a run whose runner "
        f"died{ttl}; run `cfw guard {name} --once` from a machine that stays up (cron), "
        f"`cfw reap` destroys what is past its ttl"
    )


def say_unguarded(reporter: Reporter, resolved) -> None:
    line = unguarded_line(resolved.kind, resolved.config, resolved.name)
    if line:
        reporter.warn(line)

"""The guard's decisions: heartbeats, active jobs, the clock and the config in; actions out.

Pure (no I/O, no clock of its own) and standard library only: this one file is zipped into
the cloud guard (a Lambda, a Cloud Run job, ...) and also run by `cfw guard NAME --once`.
An adapter lists what is there, calls `decide`, carries out `Decision.actions` (idempotent
cancels, one stop) and stores `Decision.record` (cfw.core.heartbeat.write_record).

The rules (times are UTC; a naive datetime is taken as UTC):

- A run's last sign of life is the later of its heartbeat object's last-modified time and
  its newest job's creation time: the cloud's clocks. The heartbeat's `updated_at` (the
  runner's clock) is only reported, so a runner whose clock is behind is not cancelled
  early, nor one whose clock is ahead kept alive; a corrupt heartbeat counts the same way.
- A run whose last sign of life is `orphan_after` old or older is stale: its jobs are
  cancelled ("stale"). A run with jobs but no heartbeat (the runner writes one before its
  first job: a write failed, or the run ended and left jobs) is judged by its jobs alone
  ("orphan"), and so is each job with no run label ("orphan").
- Clock skew: a time in the future counts as now, never as stale; more than MAX_SKEW ahead,
  the decision also says that this machine's clock seems behind the cloud's.
- Activity (a live run or any active job) sets the idle timer (`record.active_at`) to now,
  and so does a first check, a return from a stop, or the guard turned back on. After
  `idle_after` with no activity, what bills while idle is stopped ("idle").
- Past `expires_at` (the `cfw-expires-at` label) every listed job is cancelled at every
  check, and what bills is stopped, whatever runs ("ttl").
- Stopped stays stopped: after a stop (by the guard, or found so by the adapter) the guard
  does not stop again until the environment runs again: the adapter sees it running, a job
  was created after the stop, or `cfw up` stored `restarted(record)`.
- Guard off (`enabled: false`): no action, a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

EXPIRES_AT_FORMAT = "%Y%m%dt%H%M%Sz"  # the cfw-expires-at label (backends.kind.Identity)
MAX_SKEW = timedelta(minutes=5)  # clocks further apart than this are reported
HISTORY_LIMIT = 100  # events kept in the record, newest last

CANCEL = "cancel"  # cancel the jobs of run_id (by its label) or, without run_id, job_ids
STOP = "stop"  # stop what bills while idle (pools to zero, server stopped, ...)
NOTED = "noted"  # history only: found stopped, seen running again, restored by cfw up


@dataclass(frozen=True)
class Settings:
    """The guard's config (cfw.core.config.GuardConfig.settings() builds it)."""

    enabled: bool = True
    interval: timedelta = timedelta(minutes=5)
    orphan_after: timedelta = timedelta(minutes=15)
    idle_after: timedelta | None = timedelta(minutes=30)  # None: off
    expires_at: datetime | None = None  # from the cfw-expires-at label; None: no ttl


@dataclass(frozen=True)
class Job:
    """An active (not ended) job as the backend lists it by the environment's labels."""

    job_id: str  # what the backend cancels
    run_id: str | None  # the cfw-run label; None or "": no run label
    state: str  # the backend's own word (RUNNING, QUEUED, ...), for reasons
    created_at: datetime  # the backend's clock


@dataclass(frozen=True)
class Beat:
    """One heartbeat object as the guard sees it (cfw.core.heartbeat.Stored.beat)."""

    run_id: str  # from the object's key
    last_modified: datetime  # the storage's time of the object's last write
    owner: str = ""  # user@host; "" when the record is unreadable
    updated_at: datetime | None = None  # the runner's own clock; None when unreadable
    problem: str = ""  # why the record is unreadable; "" when it is fine


@dataclass(frozen=True)
class Action:
    kind: str  # CANCEL or STOP
    cause: str  # stale, orphan, idle, ttl
    reason: str  # one human sentence
    run_id: str | None = None
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """One line of the guard's history: what it did (or noted), when and why."""

    at: datetime
    action: str  # CANCEL, STOP or NOTED
    cause: str
    reason: str
    run_id: str | None = None


@dataclass(frozen=True)
class GuardRecord:
    """The guard's memory between checks, stored beside the heartbeats."""

    enabled: bool = True
    checked_at: datetime | None = None
    active_at: datetime | None = None  # last check that saw a live run or an active job
    stopped_at: datetime | None = None  # what bills is stopped since (None: running)
    stopped_cause: str = ""  # idle, ttl or found (the adapter found it stopped)
    history: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Unreadable:
    """A stored guard record that could not be decoded: decide() starts afresh, says so."""

    problem: str


@dataclass(frozen=True)
class RunView:
    """One run as the guard judges it (also what `cfw status` shows)."""

    run_id: str
    live: bool
    last_seen: datetime  # its last sign of life (heartbeat written, newest job created)
    age: timedelta  # now - last_seen, never negative
    heartbeat: bool = False  # a heartbeat object exists
    owner: str = ""
    problem: str = ""  # why its heartbeat is unreadable
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    record: GuardRecord
    runs: tuple[RunView, ...] = ()
    notes: tuple[str, ...] = ()  # worth saying, not acted on: skew, missed checks, off


# -- the cfw-expires-at label ---------------------------------------------------------------


def parse_expires_at(value: str | None) -> datetime | None:
    """`20250101t120000z` -> that UTC time; `never`, empty or None -> None (no ttl)."""
    text = (value or "").strip().lower()
    if text in ("", "never"):
        return None
    try:
        if len(text) != 16:  # strptime would read 20250301t1430z as 14:03:00
            raise ValueError
        return datetime.strptime(text, EXPIRES_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"cfw-expires-at {value!r}: expected a UTC time such as 20250101t120000z, or never"
        ) from None


def format_expires_at(value: datetime | None) -> str:
    return _utc(value).strftime(EXPIRES_AT_FORMAT) if value else "never"


# -- deciding -----------------------------------------------------------------------------


def assess_runs(
    beats: Iterable[Beat], jobs: Iterable[Job], *, now: datetime, orphan_after: timedelta
) -> tuple[RunView, ...]:
    """Every run that has a heartbeat or a labelled job, by run id: live or stale."""
    now = _utc(now)
    newest: dict[str, Beat] = {}
    for beat in beats:
        known = newest.get(beat.run_id)
        if known is None or _utc(beat.last_modified) > _utc(known.last_modified):
            newest[beat.run_id] = beat
    labelled: dict[str, list[Job]] = {}
    for job in jobs:
        if job.run_id:
            labelled.setdefault(job.run_id, []).append(job)
    views = []
    for run_id in sorted(set(newest) | set(labelled)):
        beat, its = newest.get(run_id), labelled.get(run_id, [])
        times = [_utc(j.created_at) for j in its]
        if beat is not None:
            times.append(_utc(beat.last_modified))
        last = max(times)
        age = max(now - last, timedelta(0))
        views.append(
            RunView(
                run_id=run_id,
                live=age < orphan_after,
                last_seen=last,
                age=age,
                heartbeat=beat is not None,
                owner=beat.owner if beat is not None else "",
                problem=beat.problem if beat is not None else "",
                job_ids=tuple(sorted(j.job_id for j in its)),
            )
        )
    return tuple(views)


def decide(
    *,
    now: datetime,
    settings: Settings,
    beats: Iterable[Beat] = (),
    jobs: Iterable[Job] = (),
    previous: GuardRecord | Unreadable | None = None,
    stopped: bool | None = None,
) -> Decision:
    """One check. `stopped` is what the adapter sees of what bills while idle: True
    (already stopped), False (running) or None (it did not look; the record decides)."""
    now = _utc(now)
    beats, jobs = list(beats), sorted(jobs, key=lambda j: (j.run_id or "", j.job_id))
    notes = _clock_notes(beats, jobs, now)
    if isinstance(previous, Unreadable):
        notes.insert(0, f"the guard's record was unreadable ({previous.problem}); started afresh")
        previous = None
    prev = previous or GuardRecord()
    if prev.checked_at and now - _utc(prev.checked_at) > 3 * settings.interval:
        notes.append(
            f"the previous check was {_human(now - _utc(prev.checked_at))} ago "
            f"(guard.interval is {_human(settings.interval)}): checks were missed"
        )
    runs = assess_runs(beats, jobs, now=now, orphan_after=settings.orphan_after)
    if not settings.enabled:
        notes.append(
            "the guard is off (guard.enabled: false): nothing is cancelled or stopped, "
            "and nothing in the cloud enforces ttl"
        )
        return Decision((), replace(prev, enabled=False, checked_at=now), runs, tuple(notes))

    events: list[Event] = []
    stopped_at, cause = _still_stopped(prev, stopped, jobs, now, events)
    active = bool(jobs) or any(r.live for r in runs)
    back = prev.stopped_at is not None and stopped_at is None  # or the guard was off
    active_at = now if active or back or not prev.enabled else _utc(prev.active_at or now)
    expires = _utc(settings.expires_at) if settings.expires_at else None
    if expires is not None and now >= expires:
        ended = f"the environment's ttl ended at {_show(expires)}, {_human(now - expires)} ago"
        actions = _cancel_all(runs, jobs, ended)
        if stopped_at is None:
            actions.append(Action(STOP, "ttl", f"{ended}: stopping what bills, whatever runs"))
            stopped_at, cause = now, "ttl"
        else:
            notes.append(f"{ended}; what bills is already stopped (since {_show(stopped_at)})")
    else:
        actions = _cancel_orphans(runs, jobs, now, settings.orphan_after)
        idle = settings.idle_after
        if idle is not None and not active and stopped_at is None and now - active_at >= idle:
            reason = (
                f"no live run and no active job for {_human(now - active_at)} "
                f"(guard.idle_after {_human(idle)}): stopping what bills while idle"
            )
            actions.append(Action(STOP, "idle", reason))
            stopped_at, cause = now, "idle"
    events += [Event(now, a.kind, a.cause, a.reason, a.run_id) for a in actions]
    record = GuardRecord(
        enabled=True,
        checked_at=now,
        active_at=active_at,
        stopped_at=stopped_at,
        stopped_cause=cause if stopped_at else "",
        history=(prev.history + tuple(events))[-HISTORY_LIMIT:],
    )
    return Decision(tuple(actions), record, runs, tuple(notes))


def _cancel_all(runs: tuple[RunView, ...], jobs: list[Job], ended: str) -> list[Action]:
    actions = []
    for run in runs:
        if run.job_ids:
            reason = f"{ended}: cancelling run {run.run_id}'s {_jobs_word(run.job_ids, jobs)}"
            actions.append(Action(CANCEL, "ttl", reason, run.run_id, run.job_ids))
    unlabelled = tuple(j.job_id for j in jobs if not j.run_id)
    if unlabelled:
        reason = f"{ended}: cancelling {_jobs_word(unlabelled, jobs)} with no run label"
        actions.append(Action(CANCEL, "ttl", reason, None, unlabelled))
    return actions


def _cancel_orphans(
    runs: tuple[RunView, ...], jobs: list[Job], now: datetime, orphan_after: timedelta
) -> list[Action]:
    limit = f"guard.orphan_after {_human(orphan_after)}"
    actions = []
    for run in runs:
        if run.live or not run.job_ids:
            continue
        what = _jobs_word(run.job_ids, jobs)
        if run.heartbeat:
            who = f" ({run.owner})" if run.owner else f" (unreadable heartbeat: {run.problem})"
            reason = (
                f"run {run.run_id}{who} shows no sign of life for {_human(run.age)} ({limit}): "
                f"its runner is gone; cancelling its {what}"
            )
            actions.append(Action(CANCEL, "stale", reason, run.run_id, run.job_ids))
        else:
            reason = (
                f"run {run.run_id} has {what} but no heartbeat, and its newest job was created "
                f"{_human(run.age)} ago ({limit}): cancelling them"
            )
            actions.append(Action(CANCEL, "orphan", reason, run.run_id, run.job_ids))
    old = tuple(j.job_id for j in jobs if not j.run_id and now - _utc(j.created_at) >= orphan_after)
    if old:
        reason = f"{_jobs_word(old, jobs)} with no run label, older than {limit}: cancelling them"
        actions.append(Action(CANCEL, "orphan", reason, None, old))
    return actions


def restarted(record: GuardRecord | None, now: datetime, reason: str = "") -> GuardRecord:
    """The record `cfw up` stores when it brings the environment back: nothing stopped, the
    idle timer starting now."""
    now = _utc(now)
    record = record or GuardRecord()
    event = Event(now, NOTED, "up", reason or "cfw up brought the environment back")
    history = (*record.history, event)[-HISTORY_LIMIT:]
    return replace(record, active_at=now, stopped_at=None, stopped_cause="", history=history)


def _still_stopped(
    prev: GuardRecord, seen: bool | None, jobs: list[Job], now: datetime, events: list[Event]
) -> tuple[datetime | None, str]:
    if seen is False:
        if prev.stopped_at:
            events.append(Event(now, NOTED, "running", "what bills is running again"))
        return None, ""
    if prev.stopped_at:
        since = _utc(prev.stopped_at)
        if seen is None and any(_utc(j.created_at) > since for j in jobs):
            events.append(Event(now, NOTED, "running", "jobs were created after the stop"))
            return None, ""
        return since, prev.stopped_cause
    if seen is True:
        events.append(Event(now, NOTED, "found", "what bills was found already stopped"))
        return now, "found"
    return None, ""


def _clock_notes(beats: list[Beat], jobs: list[Job], now: datetime) -> list[str]:
    notes = []
    for beat in sorted(beats, key=lambda b: b.run_id):
        written = _utc(beat.last_modified)
        if written - now > MAX_SKEW:
            notes.append(
                f"run {beat.run_id}'s heartbeat was written {_human(written - now)} in the "
                "future: this machine's clock seems behind the storage's; the run counts as live"
            )
        if beat.updated_at is not None and abs(_utc(beat.updated_at) - written) > MAX_SKEW:
            notes.append(
                f"run {beat.run_id}'s runner clock is "
                f"{_human(abs(_utc(beat.updated_at) - written))} off the storage's; "
                "the guard goes by the storage's time"
            )
    ahead = [j for j in jobs if _utc(j.created_at) - now > MAX_SKEW]
    if ahead:
        notes.append(
            f"{len(ahead)} job(s) were created in the future: this machine's clock seems "
            "behind the cloud's; they count as new"
        )
    return notes


# -- small helpers --------------------------------------------------------------------------


def _utc(value: Any) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _show(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _human(value: timedelta) -> str:
    """45s, 12m, 1h05m, 2d03h."""
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h{minutes % 60:02d}m" if minutes % 60 else f"{hours}h"
    return f"{days}d{hours % 24:02d}h" if hours % 24 else f"{days}d"


def _jobs_word(ids: tuple[str, ...], jobs: list[Job]) -> str:
    """`3 jobs (2 RUNNING, 1 QUEUED)`."""
    wanted = set(ids)
    states: dict[str, int] = {}
    for job in jobs:
        if job.job_id in wanted:
            states[job.state] = states.get(job.state, 0) + 1
    detail = ", ".join(f"{n} {state}" for state, n in sorted(states.items()) if state)
    noun = "job" if len(ids) == 1 else "jobs"
    return f"{len(ids)} {noun}" + (f" ({detail})" if detail else "")

"""One guard check: read what is there, decide, act, remember.

The cloud guard (a Lambda, a Cloud Run job, ...) and `cfw guard NAME --once` both call
`check(adapter, settings, now)`. The adapter is the thin per-cloud part: where heartbeats
and the guard record live (a HeartbeatStore and a prefix), which jobs are active, whether
what bills while idle is stopped, and how to cancel and stop. Everything else is
cfw.core.guard.decide.

An action that raises is reported (one line in Outcome.errors) and the others still run; a
stop that failed is not remembered as done, so the next check tries again. A dry run lists
what would be done and changes nothing: no action, no record written.

Standard library only (with cfw.core.guard and cfw.core.heartbeat): zipped into the cloud
guard.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from cfw.core import heartbeat
from cfw.core.guard import (
    CANCEL,
    NOTED,
    STOP,
    Action,
    Decision,
    Event,
    GuardRecord,
    Job,
    Settings,
    decide,
)
from cfw.core.heartbeat import HeartbeatStore

MAX_ERROR = 300  # characters of an exception's text kept in a line
MAX_IDS = 5  # job ids named in a line; the rest are counted


class Adapter(Protocol):
    store: HeartbeatStore  # where heartbeats and the guard record live
    prefix: str  # the environment's storage prefix ("" allowed)

    def jobs(self) -> list[Job]: ...  # active jobs carrying this env's cfw-id

    def stopped(self) -> bool | None: ...  # what bills while idle: stopped? None: can't tell

    def cancel(self, action: Action) -> list[str]: ...  # idempotent; ids it cancelled

    def stop(self, action: Action) -> str: ...  # idempotent; one line: what it stopped


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    done: tuple[str, ...]  # one line per action carried out (or planned, dry run)
    errors: tuple[str, ...]  # one line per action that failed (the check goes on)


def check(adapter: Adapter, settings: Settings, now: datetime, *, dry_run: bool = False) -> Outcome:
    """Read beats and the record, list jobs, ask stopped(), decide, carry out the actions
    (unless dry_run) and write the record (unless dry_run)."""
    errors: list[str] = []
    beats = [stored.beat for stored in heartbeat.read_all(adapter.store, adapter.prefix)]
    previous = heartbeat.read_record(adapter.store, adapter.prefix)
    jobs = adapter.jobs()
    try:
        seen = adapter.stopped()
    except Exception as exc:  # the check goes on: the record decides
        errors.append(f"could not tell whether what bills while idle is stopped: {_text(exc)}")
        seen = None
    decision = decide(
        now=now, settings=settings, beats=beats, jobs=jobs, previous=previous, stopped=seen
    )
    done: list[str] = []
    failed: list[tuple[Action, str]] = []
    for action in decision.actions:
        if dry_run:
            done.append(f"would {action.kind} ({action.cause}): {action.reason}")
            continue
        try:
            done.append(_carry_out(adapter, action))
        except Exception as exc:
            line = f"{action.kind} ({action.cause}) failed: {_text(exc)}"
            errors.append(line)
            failed.append((action, line))
    if not dry_run:
        record = _forget_failures(decision, failed)
        heartbeat.write_record(adapter.store, adapter.prefix, record)
        decision = replace(decision, record=record)
    return Outcome(decision, tuple(done), tuple(errors))


def describe_cancel(action: Action, ids: list[str]) -> str:
    """`stale: cancelled 2 jobs of run r1: a, b`; nothing left: says so."""
    whose = f"of run {action.run_id}" if action.run_id else "with no run label"
    if not ids:
        return f"{action.cause}: nothing left to cancel {whose} (already ended)"
    shown = ", ".join(sorted(ids)[:MAX_IDS])
    more = f" and {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else ""
    noun = "job" if len(ids) == 1 else "jobs"
    return f"{action.cause}: cancelled {len(ids)} {noun} {whose}: {shown}{more}"


def _carry_out(adapter: Adapter, action: Action) -> str:
    if action.kind == CANCEL:
        return describe_cancel(action, list(adapter.cancel(action)))
    if action.kind == STOP:
        return f"{action.cause}: {adapter.stop(action)}"
    raise ValueError(f"unknown action {action.kind!r}")


def _forget_failures(decision: Decision, failed: list[tuple[Action, str]]) -> GuardRecord:
    """The record to store: a failed action's event says it failed, and a stop that failed
    leaves the record as not stopped (decide stops only what is not), so the next check
    tries again."""
    record = decision.record
    if not failed:
        return record
    lines = {(a.kind, a.cause, a.reason, a.run_id): line for a, line in failed}
    history = []
    for event in record.history:
        line = lines.pop((event.action, event.cause, event.reason, event.run_id), None)
        if line is not None and event.at == record.checked_at:
            event = Event(event.at, NOTED, "failed", line, event.run_id)
        history.append(event)
    record = replace(record, history=tuple(history))
    if any(action.kind == STOP for action, _ in failed):
        record = replace(record, stopped_at=None, stopped_cause="")
    return record


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."

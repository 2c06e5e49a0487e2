"""Records of runs: which jobs went where, so `status` and `logs` can find them later.

``.cfw/<env>/runs/<run id>/run.json`` holds the counts, the pid and the estimated cost of
the run; ``jobs.jsonl`` has one line per job event (submitted with its price, started,
succeeded, failed, cancelled; ``t`` in seconds since the epoch);
``logs/`` holds saved job logs.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfw.core.procs import process_alive
from cfw.core.state import private_dir, write_private


def new_run_id() -> str:
    """Short, sortable, DNS-safe: month-day-hour-minute plus randomness."""
    return datetime.now(UTC).strftime("%m%d%H%M") + secrets.token_hex(2)


@dataclass
class RunInfo:
    run_id: str
    env: str
    pid: int
    started: str
    finished: str | None = None
    total: int = 0
    done: int = 0
    running: int = 0
    failed: int = 0
    outcome: str | None = None  # success / failure / interrupted / budget
    extra: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] | None = None  # the run's estimated cost (executor/cost.py)


class RunLog:
    """Written by the executor while a run goes on. Job events are kept in memory and
    appended to jobs.jsonl by :meth:`flush` (the executor flushes about once a second and
    at the end), so that recording costs nothing per job."""

    def __init__(self, run_dir: Path, env: str, run_id: str):
        self.dir = private_dir(run_dir)
        private_dir(self.dir / "logs")
        self.info = RunInfo(
            run_id=run_id,
            env=env,
            pid=os.getpid(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._lock = threading.RLock()
        self._pending: list[str] = []
        self.save()

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    def save(self) -> None:
        with self._lock:  # the scheduler's thread and the status thread both report
            write_private(self.dir / "run.json", json.dumps(asdict(self.info), indent=2) + "\n")

    def job_event(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event, **fields}
        with self._lock:
            self._pending.append(json.dumps(record) + "\n")

    def counts(self, *, done: int, running: int, failed: int, total: int | None = None) -> None:
        with self._lock:
            self.info.done, self.info.running, self.info.failed = done, running, failed
            if total is not None:
                self.info.total = total

    def flush(self) -> None:
        """Append the events so far to jobs.jsonl and rewrite run.json."""
        with self._lock:
            if self._pending:
                fd = os.open(self.dir / "jobs.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a") as handle:
                    handle.write("".join(self._pending))
                self._pending.clear()
            self.save()

    def finish(self, outcome: str) -> None:
        with self._lock:
            self.info.finished = datetime.now(UTC).isoformat(timespec="seconds")
            self.info.outcome = outcome
            self.info.running = 0
            self.flush()


def record_startup_error(run_dir: Path, error: Exception) -> None:
    """The executor could not start (a user mistake, say): keep it for `cfw run`."""
    private_dir(run_dir)
    record = {
        "type": type(error).__name__,
        "message": getattr(error, "message", str(error)),
        "hint": getattr(error, "hint", None),
    }
    write_private(run_dir / "startup-error.json", json.dumps(record) + "\n")


def startup_error(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "startup-error.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_run(run_dir: Path) -> RunInfo | None:
    try:
        return RunInfo(**json.loads((run_dir / "run.json").read_text()))
    except (OSError, json.JSONDecodeError, TypeError):
        return None


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Newest first."""
    if not runs_dir.is_dir():
        return []
    runs = [read_run(path) for path in runs_dir.iterdir() if path.is_dir()]
    return sorted((r for r in runs if r), key=lambda r: r.started, reverse=True)


def active_runs(runs_dir: Path) -> list[RunInfo]:
    return [r for r in list_runs(runs_dir) if r.finished is None and process_alive(r.pid)]


def job_records(run_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = (run_dir / "jobs.jsonl").read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def find_job(runs_dir: Path, job: str, run_id: str | None = None) -> tuple[RunInfo, dict] | None:
    """A job's records merged, latest last (its rule from `submitted`, its outcome and log
    from the newest), by Snakemake job id or external id, newest run first."""
    for run in list_runs(runs_dir):
        if run_id and run.run_id != run_id:
            continue
        records = [
            r
            for r in job_records(runs_dir / run.run_id)
            if str(r.get("jobid")) == job or r.get("external_id") == job
        ]
        if records:
            # a retried job: the newest attempt's records only
            starts = [i for i, r in enumerate(records) if r.get("event") == "submitted"]
            merged: dict = {}
            for record in records[starts[-1] if starts else 0 :]:
                merged.update(record)
            return run, merged
    return None


def earlier_attempts(run_dir: Path, job: str) -> list[dict[str, Any]]:
    """The submissions of a job before its newest one, each merged with how it ended
    (a preempted one: its reason and saved log), oldest first."""
    records = [
        r for r in job_records(run_dir) if str(r.get("jobid")) == job or r.get("external_id") == job
    ]
    by_id: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for record in records:
        ext = record.get("external_id")
        if ext is None:
            continue
        if ext not in by_id:
            by_id[ext] = {}
            order.append(ext)
        by_id[ext].update(record)
    return [by_id[ext] for ext in order[:-1]]

"""One guard check against a real LocalDirStore and a fake adapter: the actions decide()
asks for are carried out, a dry run changes nothing, an action that raises is reported and
the others still run, and the record the next check reads says what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.core import heartbeat
from cfw.core.guard import CANCEL, NOTED, STOP, Action, GuardRecord, Job, Settings
from cfw.core.guard_check import Outcome, check, describe_cancel
from cfw.core.heartbeat import LocalDirStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
PREFIX = "envs/demo"


@dataclass
class FakeAdapter:
    """Jobs in memory; cancel ends them (idempotent); stop flips `is_stopped`."""

    store: LocalDirStore
    prefix: str = PREFIX
    active: list[Job] = field(default_factory=list)
    is_stopped: bool | None = False
    fail_cancel: set[str] = field(default_factory=set)  # run ids whose cancel raises
    fail_stop: bool = False
    fail_stopped: bool = False
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def jobs(self) -> list[Job]:
        return list(self.active)

    def stopped(self) -> bool | None:
        if self.fail_stopped:
            raise RuntimeError("DescribeInstances: throttled")
        return self.is_stopped

    def cancel(self, action: Action) -> list[str]:
        self.calls.append((CANCEL, action.run_id))
        if (action.run_id or "") in self.fail_cancel:
            raise RuntimeError(f"AccessDenied: cannot cancel {action.run_id}")
        wanted = set(action.job_ids)
        gone = [j.job_id for j in self.active if j.job_id in wanted]
        self.active = [j for j in self.active if j.job_id not in wanted]
        return gone

    def stop(self, action: Action) -> str:
        self.calls.append((STOP, action.cause))
        if self.fail_stop:
            raise RuntimeError("UnauthorizedOperation: ec2:StopInstances")
        self.is_stopped = True
        return "stopped the server"


def put_beat(store: LocalDirStore, run_id: str, ago: timedelta) -> None:
    beat = heartbeat.start(run_id, kind="local", env="demo", cfw_version="0", now=NOW - ago)
    heartbeat.write(store, PREFIX, beat)
    stamp = (NOW - ago).timestamp()
    os.utime(store.root / heartbeat.run_key(PREFIX, run_id), (stamp, stamp))


def job(job_id: str, run: str | None, ago: timedelta) -> Job:
    return Job(job_id, run, "RUNNING", NOW - ago)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


SETTINGS = Settings(orphan_after=15 * M, idle_after=30 * M)


@pytest.fixture
def store(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path / "store")


# (situation, beats: run -> age, jobs, previous record, stopped, settings,
#  expected calls, expected jobs left, expected stopped after)
CASES = [
    pytest.param(
        {"live": 1 * M},
        [job("j1", "live", 2 * M)],
        None,
        False,
        SETTINGS,
        [],
        {"j1"},
        False,
        id="live-run-nothing-done",
    ),
    pytest.param(
        {"dead": 20 * M, "live": 1 * M},
        [job("j1", "dead", 25 * M), job("j2", "dead", 22 * M), job("j3", "live", 2 * M)],
        None,
        False,
        SETTINGS,
        [(CANCEL, "dead")],
        {"j3"},
        False,
        id="stale-run-cancelled-live-kept",
    ),
    pytest.param(
        {},
        [job("j1", "nobeat", 40 * M), job("j9", None, 40 * M), job("j8", None, 1 * M)],
        None,
        False,
        SETTINGS,
        [(CANCEL, "nobeat"), (CANCEL, None)],
        {"j8"},
        False,
        id="orphans-by-job-age",
    ),
    pytest.param(
        {},
        [],
        GuardRecord(checked_at=NOW - 5 * M, active_at=NOW - 31 * M),
        False,
        SETTINGS,
        [(STOP, "idle")],
        set(),
        True,
        id="idle-stopped",
    ),
    pytest.param(
        {"live": 1 * M},
        [job("j1", "live", 2 * M)],
        None,
        False,
        Settings(expires_at=NOW - 2 * M),
        [(CANCEL, "live"), (STOP, "ttl")],
        set(),
        True,
        id="ttl-cancels-live-and-stops",
    ),
    pytest.param(
        {"dead": 20 * M},
        [job("j1", "dead", 25 * M)],
        None,
        False,
        Settings(enabled=False),
        [],
        {"j1"},
        False,
        id="guard-off",
    ),
]


@pytest.mark.parametrize(
    ("beats", "jobs", "previous", "stopped", "settings", "calls", "left", "after"), CASES
)
def test_check_carries_out_the_decision(
    store, beats, jobs, previous, stopped, settings, calls, left, after
):
    for run_id, ago in beats.items():
        put_beat(store, run_id, ago)
    if previous is not None:
        heartbeat.write_record(store, PREFIX, previous)
    adapter = FakeAdapter(store, active=list(jobs), is_stopped=stopped)

    outcome = check(adapter, settings, NOW)

    assert adapter.calls == calls
    assert {j.job_id for j in adapter.active} == left
    assert adapter.is_stopped is after
    assert len(outcome.done) == len(calls) and outcome.errors == ()
    stored = heartbeat.read_record(store, PREFIX)
    assert stored == outcome.decision.record
    assert stored.checked_at == NOW
    assert stored.enabled is settings.enabled
    assert (stored.stopped_at is not None) is after


def test_done_lines_name_what_was_cancelled_and_stopped(store):
    put_beat(store, "dead", 20 * M)
    adapter = FakeAdapter(
        store, active=[job("j1", "dead", 25 * M), job("j2", "dead", 25 * M)], is_stopped=False
    )
    outcome = check(adapter, Settings(expires_at=NOW - M), NOW)
    assert outcome.done == (
        "ttl: cancelled 2 jobs of run dead: j1, j2",
        "ttl: stopped the server",
    )


def test_dry_run_changes_nothing(store):
    put_beat(store, "dead", 20 * M)
    heartbeat.write_record(store, PREFIX, GuardRecord(checked_at=NOW - 5 * M, active_at=NOW))
    before = files(store.root)
    adapter = FakeAdapter(store, active=[job("j1", "dead", 25 * M)], is_stopped=False)

    outcome = check(adapter, Settings(expires_at=NOW - M), NOW, dry_run=True)

    assert adapter.calls == [] and [j.job_id for j in adapter.active] == ["j1"]
    assert adapter.is_stopped is False
    assert files(store.root) == before
    assert [a.kind for a in outcome.decision.actions] == [CANCEL, STOP]
    assert outcome.done[0].startswith("would cancel (ttl): ")
    assert outcome.done[1].startswith("would stop (ttl): ")
    assert outcome.errors == ()


def test_an_action_that_raises_is_reported_and_the_others_still_run(store):
    for run_id in ("a", "b", "c"):
        put_beat(store, run_id, 20 * M)
    active = [job(f"j-{r}", r, 25 * M) for r in ("a", "b", "c")]
    adapter = FakeAdapter(store, active=active, is_stopped=False, fail_cancel={"b"})

    outcome = check(adapter, SETTINGS, NOW)

    assert adapter.calls == [(CANCEL, "a"), (CANCEL, "b"), (CANCEL, "c")]
    assert [j.job_id for j in adapter.active] == ["j-b"]
    assert outcome.done == (
        "stale: cancelled 1 job of run a: j-a",
        "stale: cancelled 1 job of run c: j-c",
    )
    assert outcome.errors == ("cancel (stale) failed: RuntimeError: AccessDenied: cannot cancel b",)
    record = heartbeat.read_record(store, PREFIX)
    failed = [e for e in record.history if e.cause == "failed"]
    assert [(e.action, e.run_id) for e in failed] == [(NOTED, "b")]
    assert [e.run_id for e in record.history if e.action == CANCEL] == ["a", "c"]


def test_a_stop_that_raises_is_not_remembered_and_the_next_check_tries_again(store):
    heartbeat.write_record(
        store, PREFIX, GuardRecord(checked_at=NOW - 5 * M, active_at=NOW - 40 * M)
    )
    adapter = FakeAdapter(store, is_stopped=False, fail_stop=True)

    first = check(adapter, SETTINGS, NOW)
    assert first.done == ()
    assert first.errors == (
        "stop (idle) failed: RuntimeError: UnauthorizedOperation: ec2:StopInstances",
    )
    assert heartbeat.read_record(store, PREFIX).stopped_at is None

    adapter.fail_stop = False
    second = check(adapter, SETTINGS, NOW + 5 * M)
    assert second.done == ("idle: stopped the server",)
    assert heartbeat.read_record(store, PREFIX).stopped_at == NOW + 5 * M
    assert adapter.calls == [(STOP, "idle"), (STOP, "idle")]


def test_stopped_that_raises_is_reported_and_the_record_decides(store):
    heartbeat.write_record(
        store, PREFIX, GuardRecord(checked_at=NOW - 5 * M, active_at=NOW - 40 * M)
    )
    adapter = FakeAdapter(store, is_stopped=False, fail_stopped=True)
    outcome = check(adapter, SETTINGS, NOW)
    assert outcome.errors == (
        "could not tell whether what bills while idle is stopped: "
        "RuntimeError: DescribeInstances: throttled",
    )
    assert outcome.done == ("idle: stopped the server",)


def test_a_second_check_after_cancelling_does_nothing_more(store):
    put_beat(store, "dead", 20 * M)
    adapter = FakeAdapter(store, active=[job("j1", "dead", 25 * M)], is_stopped=False)
    check(adapter, SETTINGS, NOW)
    again = check(adapter, SETTINGS, NOW + 5 * M)
    assert again.decision.actions == () and again.done == ()
    assert adapter.calls == [(CANCEL, "dead")]


def test_corrupt_heartbeat_and_record_are_read_not_fatal(store):
    (store.root / PREFIX / ".cfw/runs").mkdir(parents=True)
    path = store.root / heartbeat.run_key(PREFIX, "bad")
    path.write_text("{not json")
    stamp = (NOW - 20 * M).timestamp()
    os.utime(path, (stamp, stamp))
    (store.root / heartbeat.guard_key(PREFIX)).write_text("garbage")
    adapter = FakeAdapter(store, active=[job("j1", "bad", 25 * M)], is_stopped=False)

    outcome = check(adapter, SETTINGS, NOW)

    assert outcome.done == ("stale: cancelled 1 job of run bad: j1",)
    assert any("unreadable" in note for note in outcome.decision.notes)
    assert isinstance(outcome, Outcome)
    assert heartbeat.read_record(store, PREFIX).checked_at == NOW


def test_describe_cancel_counts_beyond_five_and_says_when_nothing_was_left():
    action = Action(CANCEL, "stale", "r", "r1", ())
    assert describe_cancel(action, []) == "stale: nothing left to cancel of run r1 (already ended)"
    ids = [f"j{i}" for i in range(7)]
    assert describe_cancel(action, ids) == (
        "stale: cancelled 7 jobs of run r1: j0, j1, j2, j3, j4 and 2 more"
    )
    unlabelled = Action(CANCEL, "orphan", "r", None, ("x",))
    assert describe_cancel(unlabelled, ["x"]) == "orphan: cancelled 1 job with no run label: x"


def test_guard_check_runs_from_a_bare_bundle_without_site_packages(tmp_path: Path):
    """As the cloud guard is zipped: the three core files in a bare package, no
    site-packages (-S), no PYTHONPATH (-I)."""
    core = Path(heartbeat.__file__).parent
    bundle = tmp_path / "bundle"
    (bundle / "cfw" / "core").mkdir(parents=True)
    for name in ("cfw/__init__.py", "cfw/core/__init__.py"):
        (bundle / name).write_text("")
    for name in ("guard.py", "heartbeat.py", "guard_check.py"):
        shutil.copy(core / name, bundle / "cfw" / "core" / name)
    script = (
        "import sys; sys.path.insert(0, '.')\n"
        "import datetime as d, pathlib\n"
        "from cfw.core import guard, guard_check, heartbeat as hb\n"
        "now = d.datetime.now(d.UTC)\n"
        "class A:\n"
        "    store = hb.LocalDirStore(pathlib.Path(sys.argv[1])); prefix = ''\n"
        "    def jobs(self):\n"
        "        return [guard.Job('j1', None, 'RUNNING', now - d.timedelta(hours=1))]\n"
        "    def stopped(self): return False\n"
        "    def cancel(self, action): return list(action.job_ids)\n"
        "    def stop(self, action): return 'nothing'\n"
        "print(guard_check.check(A(), guard.Settings(), now).done)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(tmp_path / "store")],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('orphan: cancelled 1 job with no run label: j1',)"

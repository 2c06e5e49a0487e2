"""The guard's decisions, table-driven: what it cancels and stops, and what it remembers, for
each situation a dead runner, an idle environment or a ttl can leave."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.backends.kind import Identity
from cfw.core import guard
from cfw.core.guard import (
    CANCEL,
    HISTORY_LIMIT,
    NOTED,
    STOP,
    Beat,
    Event,
    GuardRecord,
    Job,
    Settings,
    Unreadable,
    decide,
    format_expires_at,
    parse_expires_at,
    restarted,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def beat(run: str, ago: timedelta, owner: str = "ann@laptop", **kw) -> Beat:
    return Beat(run, NOW - ago, owner=owner, updated_at=kw.pop("updated_at", NOW - ago), **kw)


def corrupt(run: str, ago: timedelta) -> Beat:
    return Beat(run, NOW - ago, problem="not JSON (Expecting value, line 1 column 1)")


def job(job_id: str, run: str | None, ago: timedelta, state: str = "RUNNING") -> Job:
    return Job(job_id, run, state, NOW - ago)


def seen(ago: timedelta) -> GuardRecord:
    """The record of a guard that last saw activity `ago`, and checked a minute ago."""
    return GuardRecord(checked_at=NOW - M, active_at=NOW - ago)


def stopped(ago: timedelta, cause: str = "idle") -> GuardRecord:
    return GuardRecord(
        checked_at=NOW - M, active_at=NOW - ago - 30 * M, stopped_at=NOW - ago, stopped_cause=cause
    )


@dataclass
class Case:
    id: str
    beats: list[Beat] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    previous: GuardRecord | Unreadable | None = None
    settings: Settings = field(default_factory=Settings)
    observed: bool | None = None
    # (kind, cause, run_id, job_ids) of each action, in order
    actions: list[tuple] = field(default_factory=list)
    stopped_cause: str = ""  # of the new record ("" = not stopped)
    active_ago: timedelta | None = timedelta(0)  # the new record's active_at, before NOW
    reason: list[str] = field(default_factory=list)  # fragments of the first action's reason
    notes: list[str] = field(default_factory=list)  # fragments found in the notes
    noted: list[str] = field(default_factory=list)  # causes of new NOTED history events


CASES = [
    Case("first check, nothing there: the idle timer starts now"),
    Case(
        "live heartbeat with no jobs: nothing to do, and it counts as activity",
        beats=[beat("r1", 1 * M)],
        previous=seen(40 * M),
    ),
    Case(
        "live heartbeat with jobs",
        beats=[beat("r1", 1 * M)],
        jobs=[job("j1", "r1", 50 * M), job("j2", "r1", 20 * M)],
    ),
    Case(
        "stale heartbeat: its run's jobs are cancelled",
        beats=[beat("r1", 20 * M), beat("r2", 1 * M)],
        jobs=[
            job("j1", "r1", 50 * M),
            job("j2", "r1", 30 * M, "QUEUED"),
            job("j3", "r2", 30 * M),
        ],
        actions=[(CANCEL, "stale", "r1", ("j1", "j2"))],
        reason=["run r1 (ann@laptop)", "no sign of life for 20m", "orphan_after 15m", "2 jobs"],
    ),
    Case(
        "a heartbeat exactly orphan_after old is stale",
        beats=[beat("r1", 15 * M)],
        jobs=[job("j1", "r1", 30 * M)],
        actions=[(CANCEL, "stale", "r1", ("j1",))],
    ),
    Case(
        "a heartbeat one second younger is live",
        beats=[beat("r1", 15 * M - timedelta(seconds=1))],
        jobs=[job("j1", "r1", 30 * M)],
    ),
    Case(
        "stale heartbeat but a job created since: the runner is alive (its writes fail)",
        beats=[beat("r1", 40 * M)],
        jobs=[job("j1", "r1", 50 * M), job("j2", "r1", 2 * M)],
    ),
    Case(
        "stale heartbeat and no jobs: nothing to cancel, no activity",
        beats=[beat("r1", 40 * M)],
        previous=seen(10 * M),
        active_ago=10 * M,
    ),
    Case(
        "a run with jobs but no heartbeat yet (young jobs): left alone",
        jobs=[job("j1", "r1", 3 * M)],
    ),
    Case(
        "a run with jobs and no heartbeat, all old: cancelled as orphans",
        jobs=[job("j1", "r1", 20 * M), job("j2", "r1", 16 * M)],
        actions=[(CANCEL, "orphan", "r1", ("j1", "j2"))],
        reason=["run r1 has 2 jobs (2 RUNNING) but no heartbeat", "created 16m ago"],
    ),
    Case(
        "jobs with no run label: the old ones are cancelled, the young ones wait",
        jobs=[job("a", None, 20 * M), job("b", "", 16 * M, "PENDING"), job("c", None, 5 * M)],
        actions=[(CANCEL, "orphan", None, ("a", "b"))],
        reason=["2 jobs (1 PENDING, 1 RUNNING) with no run label"],
    ),
    Case(
        "a corrupt heartbeat counts by its object's last-modified time (fresh)",
        beats=[corrupt("r1", 2 * M)],
        jobs=[job("j1", "r1", 30 * M)],
    ),
    Case(
        "a corrupt heartbeat counts by its object's last-modified time (stale)",
        beats=[corrupt("r1", 30 * M)],
        jobs=[job("j1", "r1", 30 * M)],
        actions=[(CANCEL, "stale", "r1", ("j1",))],
        reason=["unreadable heartbeat: not JSON"],
    ),
    Case(
        "clock skew: a heartbeat from up to 5m in the future is now, silently",
        beats=[beat("r1", -4 * M)],
        jobs=[job("j1", "r1", 30 * M)],
    ),
    Case(
        "clock skew: further in the future it is still live, and the guard says so",
        beats=[beat("r1", -2 * 60 * M, updated_at=NOW + 120 * M)],
        jobs=[job("j1", "r1", 30 * M)],
        notes=["written 2h in the future", "clock seems behind"],
    ),
    Case(
        "clock skew: a runner clock far behind does not make a live run stale",
        beats=[beat("r1", 1 * M, updated_at=NOW - 60 * M)],
        jobs=[job("j1", "r1", 30 * M)],
        notes=["run r1's runner clock is 59m off the storage's"],
    ),
    Case(
        "clock skew: a runner clock far ahead does not keep a dead run alive",
        beats=[beat("r1", 30 * M, updated_at=NOW + 60 * M)],
        jobs=[job("j1", "r1", 40 * M)],
        actions=[(CANCEL, "stale", "r1", ("j1",))],
        notes=["runner clock is 1h30m off"],
    ),
    Case(
        "clock skew: jobs created in the future count as new",
        jobs=[job("j1", None, -20 * M)],
        notes=["1 job(s) were created in the future"],
    ),
    Case(
        "idle for idle_after: what bills is stopped",
        previous=seen(30 * M),
        actions=[(STOP, "idle", None, ())],
        stopped_cause="idle",
        active_ago=30 * M,
        reason=["no live run and no active job for 30m", "guard.idle_after 30m"],
    ),
    Case("idle, not yet for idle_after", previous=seen(29 * M), active_ago=29 * M),
    Case(
        "idle_after off: never stopped for idleness",
        previous=seen(10 * 60 * M),
        settings=Settings(idle_after=None),
        active_ago=10 * 60 * M,
    ),
    Case(
        "idle timer reset by a new run",
        beats=[beat("r9", 0 * M)],
        previous=seen(40 * M),
    ),
    Case(
        "idle timer reset by any active job, even one about to be cancelled",
        jobs=[job("j1", "r1", 40 * M)],
        previous=seen(40 * M),
        actions=[(CANCEL, "orphan", "r1", ("j1",))],
    ),
    Case(
        "already stopped: not stopped again at every interval",
        previous=stopped(10 * M),
        stopped_cause="idle",
        active_ago=40 * M,
    ),
    Case(
        "already stopped, a job created since the stop: it runs again",
        jobs=[job("j1", "r2", 1 * M)],
        previous=stopped(10 * M),
        noted=["running"],
    ),
    Case(
        "already stopped, the adapter sees it running (cfw up without a reset): timer restarts",
        previous=stopped(10 * M),
        observed=False,
        noted=["running"],
    ),
    Case(
        "found stopped by the adapter: recorded once, not stopped again",
        previous=seen(40 * M),
        observed=True,
        stopped_cause="found",
        active_ago=40 * M,
        noted=["found"],
    ),
    Case(
        "ttl passed during a run: every job is cancelled and what bills stopped",
        beats=[beat("r1", 0 * M)],
        jobs=[job("j1", "r1", 5 * M), job("j2", None, 1 * M)],
        settings=Settings(expires_at=NOW - 2 * M),
        actions=[
            (CANCEL, "ttl", "r1", ("j1",)),
            (CANCEL, "ttl", None, ("j2",)),
            (STOP, "ttl", None, ()),
        ],
        stopped_cause="ttl",
        reason=["ttl ended at 2025-03-01 11:58 UTC, 2m ago", "run r1's 1 job (1 RUNNING)"],
    ),
    Case(
        "ttl passed exactly now",
        settings=Settings(expires_at=NOW),
        actions=[(STOP, "ttl", None, ())],
        stopped_cause="ttl",
    ),
    Case("ttl not yet", settings=Settings(expires_at=NOW + M)),
    Case(
        "ttl passed, already stopped: the jobs still listed are cancelled, no second stop",
        jobs=[job("j1", "r1", 20 * M)],
        previous=stopped(5 * M, "ttl"),
        settings=Settings(expires_at=NOW - 10 * M),
        actions=[(CANCEL, "ttl", "r1", ("j1",))],
        stopped_cause="ttl",
        notes=["already stopped (since 2025-03-01 11:55 UTC)"],
    ),
    Case(
        "guard off: nothing is done, whatever is there, and it says so",
        beats=[beat("r1", 60 * M)],
        jobs=[job("j1", "r1", 60 * M)],
        previous=seen(60 * M),
        settings=Settings(enabled=False, expires_at=NOW - 60 * M),
        active_ago=60 * M,
        notes=["the guard is off", "nothing in the cloud enforces ttl"],
    ),
    Case(
        "guard turned on again: the idle timer restarts rather than stopping at once",
        previous=dataclasses.replace(seen(5 * 60 * M), enabled=False),
    ),
    Case(
        "an unreadable previous record: start afresh and say so",
        previous=Unreadable("not JSON"),
        notes=["record was unreadable (not JSON); started afresh"],
    ),
    Case(
        "missed checks are reported",
        previous=GuardRecord(checked_at=NOW - 60 * M, active_at=NOW - 5 * M),
        active_ago=5 * M,
        notes=["the previous check was 1h ago (guard.interval is 5m): checks were missed"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case):
    previous_history = case.previous.history if isinstance(case.previous, GuardRecord) else ()
    decision = decide(
        now=NOW,
        settings=case.settings,
        beats=case.beats,
        jobs=case.jobs,
        previous=case.previous,
        stopped=case.observed,
    )
    got = [(a.kind, a.cause, a.run_id, a.job_ids) for a in decision.actions]
    assert got == case.actions
    for fragment in case.reason:
        assert fragment in decision.actions[0].reason
    notes = " | ".join(decision.notes)
    for fragment in case.notes:
        assert fragment in notes
    if not case.notes:
        assert decision.notes == ()

    record = decision.record
    assert record.checked_at == NOW
    assert record.enabled is case.settings.enabled
    assert record.stopped_cause == case.stopped_cause
    assert (record.stopped_at is not None) == bool(case.stopped_cause)
    assert record.active_at == NOW - case.active_ago
    # the history grows by exactly what was done, and what was noted
    new = record.history[len(previous_history) :]
    assert record.history[: len(previous_history)] == previous_history
    assert [(e.action, e.cause, e.reason) for e in new if e.action != NOTED] == [
        (a.kind, a.cause, a.reason) for a in decision.actions
    ]
    assert [e.cause for e in new if e.action == NOTED] == case.noted
    assert all(e.at == NOW for e in new)


def test_a_stop_is_remembered_so_the_next_check_does_not_stop_again():
    first = decide(now=NOW, settings=Settings(), previous=seen(31 * M))
    assert [a.kind for a in first.actions] == [STOP]
    second = decide(now=NOW + 5 * M, settings=Settings(), previous=first.record)
    assert second.actions == ()
    assert second.record.stopped_at == NOW and second.record.history == first.record.history
    # a run starts, its first job is created: the environment runs again, the timer restarts
    third = decide(
        now=NOW + 10 * M,
        settings=Settings(),
        beats=[Beat("r2", NOW + 9 * M)],
        jobs=[Job("j1", "r2", "QUEUED", NOW + 9 * M)],
        previous=second.record,
    )
    assert third.actions == () and third.record.stopped_at is None
    assert third.record.active_at == NOW + 10 * M


def test_a_stale_run_is_cancelled_at_every_check_until_its_jobs_are_gone():
    """Cancels are idempotent and adapters may be slow: the guard asks again."""
    inputs = {"beats": [beat("r1", 20 * M)], "jobs": [job("j1", "r1", 30 * M)]}
    first = decide(now=NOW, settings=Settings(), **inputs)
    second = decide(now=NOW, settings=Settings(), previous=first.record, **inputs)
    assert [a.job_ids for a in second.actions] == [("j1",)]
    gone = decide(now=NOW, settings=Settings(), beats=inputs["beats"], previous=second.record)
    assert gone.actions == ()
    assert [r.live for r in gone.runs] == [False]


def test_the_decision_does_not_depend_on_the_order_of_its_inputs():
    beats = [beat("r2", 20 * M), beat("r1", 30 * M), corrupt("r3", 1 * M)]
    jobs = [job(f"j{i}", f"r{i % 3 + 1}", i * M) for i in range(20, 30)] + [job("x", None, 40 * M)]
    one = decide(now=NOW, settings=Settings(), beats=beats, jobs=jobs)
    two = decide(now=NOW, settings=Settings(), beats=beats[::-1], jobs=jobs[::-1])
    assert one == two
    assert [a.run_id for a in one.actions] == ["r1", "r2", None]
    assert [(r.run_id, r.live, r.heartbeat) for r in one.runs] == [
        ("r1", False, True),
        ("r2", False, True),
        ("r3", True, True),
    ]


def test_runs_are_what_status_shows():
    runs = guard.assess_runs(
        [beat("r1", 3 * M), corrupt("r2", 40 * M)],
        [job("j1", "r1", 10 * M), job("j2", "r3", 2 * M)],
        now=NOW,
        orphan_after=15 * M,
    )
    r1, r2, r3 = runs
    assert (r1.live, r1.age, r1.owner, r1.job_ids) == (True, 3 * M, "ann@laptop", ("j1",))
    assert (r2.live, r2.age, r2.owner, r2.problem.startswith("not JSON")) == (
        False,
        40 * M,
        "",
        True,
    )
    assert (r3.live, r3.heartbeat, r3.last_seen) == (True, False, NOW - 2 * M)


def test_history_is_bounded():
    old = tuple(Event(NOW - i * M, CANCEL, "stale", f"e{i}") for i in range(HISTORY_LIMIT, 0, -1))
    decision = decide(
        now=NOW,
        settings=Settings(),
        jobs=[job("j1", None, 30 * M)],
        previous=GuardRecord(active_at=NOW, history=old),
    )
    assert len(decision.record.history) == HISTORY_LIMIT
    assert decision.record.history[-1].reason == decision.actions[0].reason
    assert decision.record.history[0] == old[1]


def test_restarted_is_what_cfw_up_stores():
    record = restarted(stopped(10 * M, "ttl"), NOW)
    assert (record.stopped_at, record.stopped_cause, record.active_at) == (None, "", NOW)
    assert record.history[-1].action == NOTED and record.history[-1].cause == "up"
    assert decide(now=NOW + 29 * M, settings=Settings(), previous=record).actions == ()
    assert restarted(None, NOW).active_at == NOW


def test_naive_times_are_utc():
    naive = NOW.replace(tzinfo=None)
    decision = decide(
        now=naive,
        settings=Settings(),
        beats=[Beat("r1", naive - 20 * M)],
        jobs=[Job("j1", "r1", "RUNNING", naive - 20 * M)],
    )
    assert [a.run_id for a in decision.actions] == ["r1"]
    assert decision.record.checked_at == NOW


# -- the cfw-expires-at label ---------------------------------------------------------------


def test_expires_at_label_round_trips_with_the_labels_kinds_write():
    expires = datetime(2025, 3, 1, 14, 30, 5, tzinfo=UTC)
    labels = Identity("e", "gke", "e-abc123", NOW, expires).labels()
    assert parse_expires_at(labels["cfw-expires-at"]) == expires
    assert format_expires_at(expires) == labels["cfw-expires-at"] == "20250301t143005z"
    never = Identity("e", "gke", "e-abc123", NOW, None).labels()["cfw-expires-at"]
    assert parse_expires_at(never) is None and format_expires_at(None) == never


@pytest.mark.parametrize("value", ["", None, "never", "NEVER", " never "])
def test_no_expiry(value):
    assert parse_expires_at(value) is None


@pytest.mark.parametrize(
    "value", ["2025-03-01", "20250301t1430z", "20250301t14300z", "20251301t000000z", "soon"]
)
def test_bad_expiry_label_is_a_value_error_naming_it(value):
    with pytest.raises(ValueError, match="cfw-expires-at"):
        parse_expires_at(value)


def test_expiry_label_is_case_insensitive():
    assert parse_expires_at("20250301T143005Z") == datetime(2025, 3, 1, 14, 30, 5, tzinfo=UTC)


# -- one file, standard library only ----------------------------------------------------------

CORE = Path(guard.__file__).parent
STDLIB = sys.stdlib_module_names | {"__future__"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module)
    return names


def test_guard_imports_only_the_standard_library():
    outside = {m for m in imported_modules(CORE / "guard.py") if m.split(".")[0] not in STDLIB}
    assert outside == set()


def test_heartbeat_imports_only_the_standard_library_and_the_guard():
    outside = {m for m in imported_modules(CORE / "heartbeat.py") if m.split(".")[0] not in STDLIB}
    assert outside == {"cfw.core.guard"}


def test_guard_runs_alone_and_with_heartbeat_without_site_packages(tmp_path: Path):
    """As the cloud guard is zipped: guard.py alone, or the two files in a bare package; no
    site-packages (-S), no PYTHONPATH (-I)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(CORE / "guard.py", alone / "guard.py")
    script = (
        "import sys; sys.path.insert(0, '.')\n"
        "import datetime as d, guard\n"
        "now = d.datetime(2025, 3, 1, tzinfo=d.UTC)\n"
        "b = guard.Beat('r1', now - d.timedelta(hours=1))\n"
        "j = guard.Job('j1', 'r1', 'RUNNING', now - d.timedelta(hours=1))\n"
        "print(guard.decide(now=now, settings=guard.Settings(), beats=[b], jobs=[j]).actions[0]"
        ".job_ids)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], cwd=alone, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('j1',)"

    bundle = tmp_path / "bundle"
    (bundle / "cfw" / "core").mkdir(parents=True)
    for name in ("cfw/__init__.py", "cfw/core/__init__.py"):
        (bundle / name).write_text("")
    for name in ("guard.py", "heartbeat.py"):
        shutil.copy(CORE / name, bundle / "cfw" / "core" / name)
    script = (
        "import sys; sys.path.insert(0, '.')\n"
        "import datetime as d, pathlib\n"
        "from cfw.core import guard, heartbeat as hb\n"
        "store = hb.LocalDirStore(pathlib.Path(sys.argv[1]))\n"
        "now = d.datetime.now(d.UTC).replace(microsecond=0)\n"
        "hb.write(store, 'p', hb.start('r1', kind='gke', env='e', cfw_version='1', now=now))\n"
        "beats = [s.beat for s in hb.read_all(store, 'p')]\n"
        "decision = guard.decide(now=now, settings=guard.Settings(), beats=beats)\n"
        "hb.write_record(store, 'p', decision.record)\n"
        "print([r.live for r in decision.runs], hb.read_record(store, 'p') == decision.record)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(tmp_path / "store")],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True] True"

"""Work that is the same for every job of a run is done once per run, and a job event costs
the same at the 10th job and the 10,000th: the command's shared arguments, the run's
counts, its records."""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake_interface_executor_plugins.executors.real import RealExecutor
from snakemake_interface_executor_plugins.settings import ExecMode

from cfw.backends.base import JobState
from cfw.core.records import RunLog, job_records
from cfw.executor.command import RunConstants, format_job_exec
from cfw.executor.executor import COMMON_SETTINGS
from cfw.executor.prefix import storage_plugin_install_command
from cfw.executor.tracker import RunTracker
from support.builders import job_spec

CALLS: Counter[str] = Counter()


class Factory:
    """Snakemake's SpawnedJobArgsFactory: a new one on every access, as Snakemake makes it."""

    def general_args(self, executor_common_settings):
        CALLS["general_args"] += 1
        return "--force --target-files-omit-workdir-adjustment --nolock '--config' 'a=1'"

    def precommand(self, executor_common_settings):
        CALLS["precommand"] += 1
        return "source /opt/env.sh"

    def envvars(self):
        CALLS["envvars"] += 1
        return {"API_TOKEN": "tok 'quoted'", "OTHER": "2"}


class Workflow:
    group_settings = SimpleNamespace(local_groupid="local")

    @property
    def spawned_job_args_factory(self) -> Factory:
        return Factory()


class Executor:
    """The attributes RealExecutor.format_job_exec reads, with job-dependent parts."""

    def __init__(self, declare: bool, groupid: bool):
        self.common_settings = dataclasses.replace(
            COMMON_SETTINGS, pass_envvar_declarations_to_cmd=declare
        )
        self.job_specific_local_groupid = groupid
        self.workflow = Workflow()

    def envvars(self):
        return self.workflow.spawned_job_args_factory.envvars()

    get_envvar_declarations = RealExecutor.get_envvar_declarations

    def get_job_exec_prefix(self, job):
        return f"stage checkpoint-{job}" if job % 2 else ""

    def get_job_exec_suffix(self, job):
        return "echo done" if job % 3 == 0 else ""

    def get_python_executable(self):
        return "python"

    def get_snakefile(self):
        return "Snakefile"

    def get_job_args(self, job):
        return f"--target-jobs 'rule:i={job}' --cores 2"

    def additional_general_args(self):
        return ""

    def get_exec_mode(self):
        return ExecMode.REMOTE


@pytest.mark.parametrize("declare", [False, True])
@pytest.mark.parametrize("groupid", [False, True])
def test_job_command_is_snakemakes_with_the_run_constants_built_once(declare, groupid):
    executor = Executor(declare, groupid)
    expected = [RealExecutor.format_job_exec(executor, job) for job in range(12)]
    CALLS.clear()
    constants = RunConstants(executor)
    assert [format_job_exec(executor, constants, job) for job in range(12)] == expected
    # the shared arguments: once for the run, not once per job
    assert Counter(general_args=1, precommand=1, envvars=1) == CALLS
    assert ("export API_TOKEN=" in expected[0]) is declare


def test_storage_plugin_pin_is_computed_once_per_run():
    storage_plugin_install_command.cache_clear()
    first = storage_plugin_install_command("s3")
    assert "snakemake-storage-plugin-s3==" in first
    started = time.perf_counter()
    for _ in range(1000):
        assert storage_plugin_install_command("s3") == first
    assert storage_plugin_install_command.cache_info().misses == 1
    assert time.perf_counter() - started < 0.05  # no registry, no metadata per job


class Untouchable(dict):
    """The tracker's jobs; counting must not walk them."""

    def values(self):
        raise AssertionError("counts() walked every job")

    def items(self):
        raise AssertionError("counts() walked every job")

    def __iter__(self):
        raise AssertionError("counts() walked every job")


def brute_counts(jobs) -> tuple[int, int, int, int]:
    states = [job.state for job in jobs]
    return (
        states.count(JobState.SUCCEEDED),
        sum(not s.finished for s in states),
        states.count(JobState.FAILED),
        states.count(JobState.CANCELLED),
    )


def test_counts_follow_every_event_without_walking_the_jobs(tmp_path: Path):
    tracker = RunTracker(RunLog(tmp_path / "run", "env", "r1"), flush_seconds=3600)
    rng = random.Random(16)
    ids: list[str] = []
    for step in range(3000):
        roll = rng.random()
        if roll < 0.4 or not ids:
            ext = f"x{rng.randrange(2000)}"  # now and then an id again (a resubmission)
            tracker.submitted(job_spec("r", step), ext)
            ids.append(ext)
        else:
            ext = rng.choice(ids)
            event = rng.choice(["running", "succeeded", "failed", "cancelled"])
            if event == "running":
                tracker.seen(ext, JobState.RUNNING)
            elif event == "succeeded":
                tracker.succeeded(ext, step)
            elif event == "failed":
                tracker.failed(ext, step, "exit 1", None)
            else:
                tracker.cancelled(ext)
        if step % 97 == 0:
            jobs = tracker.jobs
            expected = brute_counts(jobs.values())
            tracker.jobs = Untouchable(jobs)
            counts = tracker.counts()
            tracker.jobs = jobs
            assert (counts.done, counts.running, counts.failed, counts.cancelled) == expected


def test_job_events_are_written_in_batches(tmp_path: Path):
    class Clock:
        t = 1000.0

        def __call__(self):
            return self.t

    clock = Clock()
    log = RunLog(tmp_path / "run", "env", "r1")
    writes = Counter()
    save, flush = log.save, log.flush
    log.save = lambda: (writes.update(["run.json"]), save())[1]
    log.flush = lambda: (writes.update(["flush"]), flush())[1]
    tracker = RunTracker(log, clock=clock)
    for i in range(1000):  # a burst of submissions within a second
        tracker.submitted(job_spec("r", i), f"x{i}")
        tracker.flush()
        clock.t += 0.0005
    assert writes["flush"] == 1  # the first, then nothing until a second has passed
    clock.t += 1.0
    tracker.flush()
    tracker.finish("success")
    # one more a second later, and the end's (the counts, then the outcome)
    assert writes["flush"] == 4 and writes["run.json"] == 4
    assert len(job_records(tmp_path / "run")) == 1000


def test_a_job_event_costs_the_same_at_ten_thousand_jobs(tmp_path: Path):
    """cfw's own bookkeeping per job event (submitted, seen, finished, counted): well under
    0.5 ms, and not growing with the jobs already tracked."""
    tracker = RunTracker(RunLog(tmp_path / "run", "env", "r1"))
    specs = [job_spec("r", i) for i in range(10_000)]

    def events(lo: int, hi: int) -> float:
        started = time.process_time()
        for i in range(lo, hi):
            tracker.submitted(specs[i], f"x{i}")
            tracker.counts()
            tracker.flush()
        for i in range(lo, hi):
            tracker.seen(f"x{i}", JobState.RUNNING)
            tracker.succeeded(f"x{i}", i)
            tracker.counts()
            tracker.flush()
        return (time.process_time() - started) / ((hi - lo) * 3)

    first = events(0, 1000)
    events(1000, 9000)
    last = events(9000, 10_000)
    assert first < 0.5e-3 and last < 0.5e-3
    assert last < first * 3 + 20e-6  # flat, not growing with the 9,000 tracked before

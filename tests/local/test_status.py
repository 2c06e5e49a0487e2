"""A finished process's exit code and kill reason -> the JobStatus Snakemake is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfw.backends.base import JobState
from cfw.backends.local.status import finished_status, keeps_sandbox, limit_exceeded


def test_exit_zero_succeeds():
    status = finished_status(0, None)
    assert (status.state, status.exit_code, status.reason) == (JobState.SUCCEEDED, 0, None)


@pytest.mark.parametrize(
    ("code", "killed", "reason"),
    [
        (3, None, "exit code 3"),
        (-9, None, "killed by signal 9"),
        # a job cfw stopped failed for that reason, whatever its exit code
        (0, "cancelled", "cancelled"),
        (-15, "out of memory: used 80 MB, more than mem_mb=50", "out of memory"),
    ],
)
def test_failures_say_why(code, killed, reason):
    status = finished_status(code, killed)
    assert status.state is JobState.FAILED and status.exit_code == code
    assert status.reason.startswith(reason) and "sandbox" not in status.reason


def test_a_kept_sandbox_is_named_in_the_reason(tmp_path: Path):
    status = finished_status(1, None, kept=tmp_path)
    assert status.reason == f"exit code 1; sandbox kept at {tmp_path}"


@pytest.mark.parametrize(
    ("keep", "ok", "kept"),
    [
        ("never", False, False),
        ("never", True, False),
        ("on-failure", False, True),
        ("on-failure", True, False),
        ("always", True, True),
        ("always", False, True),
    ],
)
def test_keep_sandboxes_setting(keep, ok, kept):
    assert keeps_sandbox(keep, ok) is kept


def test_limits():
    assert limit_exceeded(10.0, 50, 5.0, 60) is None
    assert limit_exceeded(10.0, None, 5.0, None) is None
    assert limit_exceeded(80.4, 50, 5.0, 60) == "out of memory: used 80 MB, more than mem_mb=50"
    assert limit_exceeded(80.0, None, 5.0, 60) is None  # no mem_mb: memory is not limited
    assert limit_exceeded(10.0, 50, 121.0, 120) == "exceeded its runtime of 2 min"
    # memory is checked first
    assert limit_exceeded(80.0, 50, 121.0, 120).startswith("out of memory")

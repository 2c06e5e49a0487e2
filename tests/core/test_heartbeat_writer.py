"""The executor's heartbeat thread: first write before it returns, rewrites on its
interval with the active job count, removal at the end; a store that fails is said once and
the run goes on."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from cfw.core import heartbeat
from cfw.core.heartbeat import LocalDirStore
from cfw.executor.heartbeats import Heartbeats


def first(run_id: str = "03011200ab12") -> heartbeat.Heartbeat:
    return heartbeat.start(run_id, kind="local", env="e", cfw_version="1", now=datetime.now(UTC))


def test_written_before_start_returns_rewritten_and_removed(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    active = iter(range(1, 1000))
    warnings: list[str] = []
    beats = Heartbeats(store, "p", first(), lambda: next(active), warnings.append, 0.05)
    beats.start()
    [stored] = heartbeat.read_all(store, "p")  # there before any job could be submitted
    assert stored.record.jobs_active == 0
    deadline = time.monotonic() + 10
    while beats.written < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    [stored] = heartbeat.read_all(store, "p")
    assert stored.record.jobs_active >= 1 and stored.record.run_id == "03011200ab12"
    beats.stop()
    assert heartbeat.read_all(store, "p") == [] and warnings == []


class Broken(LocalDirStore):
    def put(self, key: str, body: bytes) -> None:
        raise PermissionError("AccessDenied: s3:PutObject")

    def delete(self, key: str) -> None:
        raise PermissionError("AccessDenied: s3:DeleteObject")


def test_a_failing_store_is_said_once_and_the_run_goes_on(tmp_path: Path):
    warnings: list[str] = []
    beats = Heartbeats(Broken(tmp_path), "p", first(), lambda: 2, warnings.append, 0.02)
    beats.start()
    time.sleep(0.2)
    beats.stop()
    assert len(warnings) == 2, warnings
    assert "could not write run 03011200ab12's heartbeat" in warnings[0]
    assert "AccessDenied: s3:PutObject" in warnings[0]
    assert "could not remove" in warnings[1]

"""Run heartbeats and the guard's record in storage: their JSON (a corrupt or foreign object
is a typed result, never an exception), their keys, and the local directory store."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.core import heartbeat as hb
from cfw.core.guard import Event, GuardRecord, Settings, Unreadable, decide
from cfw.core.heartbeat import Corrupt, Heartbeat, LocalDirStore, ObjectInfo
from cfw.core.records import new_run_id

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def heartbeat(run_id: str = "03011200ab12", **kw) -> Heartbeat:
    values = {
        "run_id": run_id,
        "owner": "ann@laptop",
        "pid": 4242,
        "started_at": NOW - 30 * M,
        "updated_at": NOW,
        "jobs_active": 3,
        "kind": "gke",
        "env": "gke",
        "cfw_version": "0.4.0",
    }
    return Heartbeat(**(values | kw))


def body(**changes) -> bytes:
    """A valid heartbeat's JSON with some fields changed (None: removed)."""
    data = json.loads(hb.encode(heartbeat()))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data).encode()


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        heartbeat(),
        heartbeat("r1", jobs_active=0, owner="zoë@héllo", pid=0),
        heartbeat("run_with-all-chars9", started_at=datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_encode_decode_round_trip(record: Heartbeat):
    assert hb.decode(hb.encode(record)) == record
    assert hb.decode(hb.encode(record).decode()) == record


def test_encoded_heartbeat_is_plain_json_with_its_schema():
    data = json.loads(hb.encode(heartbeat()))
    assert data["schema"] == "cfw.heartbeat" and data["version"] == 1
    assert data["updated_at"] == "2025-03-01T12:00:00Z"
    assert set(data) == {"schema", "version", *hb._FIELDS}


def test_times_in_another_zone_are_read_as_utc():
    record = hb.decode(body(updated_at="2025-03-01T13:00:00+01:00"))
    assert record.updated_at == NOW and record.updated_at.tzinfo == UTC


def test_a_newer_version_is_read_by_the_fields_this_one_knows():
    assert hb.decode(body(version=2, gpu_hours=1.5)) == heartbeat()


CORRUPT = [
    (b"", "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a cfw heartbeat"),
    (b'"text"', "not a cfw heartbeat"),
    (b'{"run_id": "r1"}', "not a cfw heartbeat"),
    (body(schema="cfw.guard"), "not a cfw heartbeat"),
    (body(version=0), "field 'version'"),
    (body(version="1"), "field 'version'"),
    (body(version=True), "field 'version'"),
    (body(owner=None), "field 'owner' is missing"),
    (body(updated_at=None), "field 'updated_at' is missing"),
    (body(pid="4242"), "field 'pid': expected a whole number"),
    (body(pid=True), "field 'pid'"),
    (body(jobs_active=-1), "field 'jobs_active'"),
    (body(jobs_active=1.5), "field 'jobs_active'"),
    (body(kind=7), "field 'kind': expected text"),
    (
        body(updated_at="2025-03-01T12:00:00"),
        "field 'updated_at': expected an ISO time with a zone",
    ),
    (body(started_at="yesterday"), "field 'started_at'"),
    (body(started_at=1740830400), "field 'started_at'"),
    (body(run_id="../../etc"), "field 'run_id'"),
    (body(run_id=""), "field 'run_id'"),
    (b"[" * 100000, "larger than a heartbeat"),
    (b"[" * 50000 + b"]" * 50000, "larger than a heartbeat"),
    (b"[" * 30000 + b"]" * 30000, "not JSON that a heartbeat can be"),
    (b"1" * 60000, "not JSON that a heartbeat can be"),
]


@pytest.mark.parametrize(("data", "problem"), CORRUPT, ids=[c[1] for c in CORRUPT])
def test_corrupt_or_foreign_objects_are_corrupt_with_a_reason(data: bytes, problem: str):
    result = hb.decode(data)
    assert isinstance(result, Corrupt)
    assert problem in result.problem
    assert len(result.problem) < 200


def test_decode_never_raises():
    rng = random.Random(11)
    valid = hb.encode(heartbeat())
    for _ in range(500):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        assert isinstance(hb.decode(bytes(data)), Heartbeat | Corrupt)


@pytest.mark.parametrize("run_id", ["a/b", "R1", "r.1", "r1-", "-r1", "", "r" * 64])
def test_encode_refuses_a_run_id_that_a_label_or_key_would_change(run_id: str):
    with pytest.raises(ValueError, match="cannot name a heartbeat object"):
        hb.encode(heartbeat(run_id))


def test_the_run_ids_cfw_makes_are_heartbeat_run_ids():
    assert all(hb.RUN_ID_RE.match(new_run_id()) for _ in range(20))
    assert hb.RUN_ID_RE.match("r" * 63)


def test_start_and_beat():
    now = NOW + timedelta(microseconds=123456)
    first = hb.start("r1", kind="gke", env="prod", cfw_version="0.4.0", now=now)
    assert first.owner == hb.owner() and "@" in first.owner
    assert first.pid == os.getpid()
    assert first.started_at == first.updated_at == NOW  # kept to the second
    assert (first.jobs_active, first.kind, first.env) == (0, "gke", "prod")
    later = first.beat(NOW + 5 * M, jobs_active=7)
    assert (later.started_at, later.updated_at, later.jobs_active) == (NOW, NOW + 5 * M, 7)
    assert hb.decode(hb.encode(later)) == later


# -- the guard's record ---------------------------------------------------------------------


def test_guard_record_round_trip():
    record = GuardRecord(
        enabled=True,
        checked_at=NOW,
        active_at=NOW - 10 * M,
        stopped_at=NOW - 5 * M,
        stopped_cause="idle",
        history=(
            Event(NOW - 20 * M, "cancel", "stale", "run r1 ... cancelling its 2 jobs", "r1"),
            Event(NOW - 5 * M, "stop", "idle", "no live run and no active job for 30m"),
        ),
    )
    assert hb.decode_record(hb.encode_record(record)) == record
    assert hb.decode_record(hb.encode_record(GuardRecord())) == GuardRecord()
    assert json.loads(hb.encode_record(record))["schema"] == "cfw.guard"


def test_the_record_of_a_real_decision_round_trips():
    decision = decide(now=NOW, settings=Settings(), previous=GuardRecord(active_at=NOW - 40 * M))
    assert decision.actions and hb.decode_record(hb.encode_record(decision.record)) == (
        decision.record
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "JSONDecodeError"),
        (b"[]", "not a cfw guard record"),
        (hb.encode(heartbeat()), "not a cfw guard record"),
        (b'{"schema": "cfw.guard", "checked_at": "noon"}', "ValueError"),
        (b'{"schema": "cfw.guard", "checked_at": "2025-03-01T12:00:00"}', "no timezone"),
        (b'{"schema": "cfw.guard", "active_at": 5}', "TypeError"),
        (b'{"schema": "cfw.guard", "history": [{"at": "2025-03-01T12:00:00Z"}]}', "KeyError"),
        (b'{"schema": "cfw.guard", "history": [3]}', "TypeError"),
        (b'{"schema": "cfw.guard", "history": 3}', "TypeError"),
        (
            b'{"schema": "cfw.guard", "history": [{"at": "2025-03-01T12:00:00Z", "action": 1,'
            b' "cause": "x", "reason": "y"}]}',
            "not text",
        ),
        (b"[" * 30000 + b"]" * 30000, "RecursionError"),
    ],
)
def test_a_corrupt_guard_record_is_unreadable_with_a_reason(data: bytes, problem: str):
    result = hb.decode_record(data)
    assert isinstance(result, Unreadable)
    assert problem in result.problem


# -- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "runs", "guard"),
    [
        ("", ".cfw/runs/", ".cfw/guard.json"),
        ("cfw", "cfw/.cfw/runs/", "cfw/.cfw/guard.json"),
        ("/team/cfw/", "team/cfw/.cfw/runs/", "team/cfw/.cfw/guard.json"),
    ],
)
def test_key_layout(prefix: str, runs: str, guard: str):
    assert hb.runs_prefix(prefix) == runs
    assert hb.run_key(prefix, "r1") == runs + "r1.json"
    assert hb.guard_key(prefix) == guard
    assert hb.run_id_of(runs + "r1.json", prefix) == "r1"


@pytest.mark.parametrize(
    "key",
    ["cfw/.cfw/guard.json", "cfw/.cfw/runs/r1.txt", "cfw/.cfw/runs/a/b.json", "other/r1.json"],
)
def test_other_keys_name_no_run(key: str):
    assert hb.run_id_of(key, "cfw") is None


def test_run_key_refuses_a_bad_run_id():
    with pytest.raises(ValueError):
        hb.run_key("cfw", "../x")


# -- the local directory store --------------------------------------------------------------


def test_local_store_put_get_list_delete(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    assert store.get("a/b.json") is None and store.list("") == []
    store.put("a/b.json", b"one")
    store.put("a/b.json", b"two")
    store.put("a/c/d.json", b"three")
    store.put("e.json", b"four")
    assert store.get("a/b.json") == b"two"
    assert [o.key for o in store.list("")] == ["a/b.json", "a/c/d.json", "e.json"]
    assert [o.key for o in store.list("a/")] == ["a/b.json", "a/c/d.json"]
    assert [o.key for o in store.list("a/c")] == ["a/c/d.json"]
    assert store.list("nothing/here/") == []
    assert (tmp_path / "a" / "b.json").stat().st_mode & 0o777 == 0o600
    store.delete("a/b.json")
    store.delete("a/b.json")  # idempotent
    store.delete("a")  # a folder is no object
    assert store.get("a/b.json") is None and store.get("a") is None
    assert [o.key for o in store.list("")] == ["a/c/d.json", "e.json"]


def test_local_store_last_modified_is_the_files_mtime(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    store.put("k.json", b"{}")
    os.utime(tmp_path / "k.json", (NOW.timestamp(), NOW.timestamp()))
    assert store.list("") == [ObjectInfo("k.json", NOW)]


def test_local_store_writes_leave_no_temporary_files_and_lists_none(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    for i in range(5):
        store.put("runs/r.json", str(i).encode())
    (tmp_path / "runs" / ".r.json.0badcafe.tmp").write_bytes(b"half")  # a writer that died
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        ".r.json.0badcafe.tmp",
        "r.json",
    ]
    assert [o.key for o in store.list("runs/")] == ["runs/r.json"]


@pytest.mark.parametrize("key", ["", "/abs.json", "a/../b.json", "a//b.json", "./a.json", "a\\b"])
def test_local_store_refuses_keys_outside_its_root(tmp_path: Path, key: str):
    store = LocalDirStore(tmp_path / "root")
    with pytest.raises(ValueError, match="not a store key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="not a store key"):
        store.get(key)


@pytest.mark.parametrize("prefix", ["/etc/", "../", "a/../../"])
def test_local_store_refuses_prefixes_outside_its_root(tmp_path: Path, prefix: str):
    with pytest.raises(ValueError, match="not a store prefix"):
        LocalDirStore(tmp_path).list(prefix)


# -- reading and writing through a store ----------------------------------------------------


def test_write_read_all_remove(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    hb.write(store, "cfw", heartbeat("r1"))
    hb.write(store, "cfw", heartbeat("r2", jobs_active=0))
    store.put("cfw/.cfw/runs/r3.json", b"{half a heartb")  # corrupt
    store.put("cfw/.cfw/runs/r4.json", hb.encode(heartbeat("r1")))  # another run's record
    store.put("cfw/.cfw/runs/notes.txt", b"foreign")  # not a heartbeat key: ignored
    store.put("cfw/.cfw/runs/bad id.json", b"{}")  # nor this
    store.put("other/.cfw/runs/r9.json", hb.encode(heartbeat("r9")))  # another prefix
    stored = hb.read_all(store, "cfw")
    assert [s.run_id for s in stored] == ["r1", "r2", "r3", "r4"]
    assert stored[0].record == heartbeat("r1") and stored[0].key == "cfw/.cfw/runs/r1.json"
    assert isinstance(stored[2].record, Corrupt) and "not JSON" in stored[2].record.problem
    assert stored[3].record == Corrupt("names run 'r1' but is stored as run 'r4'")
    hb.remove(store, "cfw", "r2")
    hb.remove(store, "cfw", "r2")  # idempotent
    assert [s.run_id for s in hb.read_all(store, "cfw")] == ["r1", "r3", "r4"]


def test_a_heartbeat_that_vanishes_between_list_and_get_is_left_out(tmp_path: Path):
    class Racing(LocalDirStore):
        def get(self, key: str) -> bytes | None:
            if key.endswith("r1.json"):
                self.delete(key)  # the run ended just now
            return super().get(key)

    store = Racing(tmp_path)
    hb.write(store, "", heartbeat("r1"))
    hb.write(store, "", heartbeat("r2"))
    assert [s.run_id for s in hb.read_all(store, "")] == ["r2"]


def test_stored_heartbeats_are_what_the_guard_decides_on(tmp_path: Path):
    """The guard goes by the object's last-modified time (the storage's clock), for a
    corrupt heartbeat as for a good one; the record's updated_at is only reported."""
    store = LocalDirStore(tmp_path)
    hb.write(store, "", heartbeat("live", updated_at=NOW - 60 * M))  # the runner's clock is off
    hb.write(store, "", heartbeat("dead"))
    store.put(hb.run_key("", "broken"), b"\x00")
    for run, ago in (("live", 1 * M), ("dead", 20 * M), ("broken", 20 * M)):
        when = (NOW - ago).timestamp()
        os.utime(tmp_path / hb.run_key("", run), (when, when))
    beats = [s.beat for s in hb.read_all(store, "")]
    assert [(b.run_id, b.last_modified, b.owner, b.problem != "") for b in beats] == [
        ("broken", NOW - 20 * M, "", True),
        ("dead", NOW - 20 * M, "ann@laptop", False),
        ("live", NOW - 1 * M, "ann@laptop", False),
    ]
    decision = decide(now=NOW, settings=Settings(), beats=beats)
    assert {r.run_id: r.live for r in decision.runs} == {
        "broken": False,
        "dead": False,
        "live": True,
    }


def test_guard_record_through_a_store(tmp_path: Path):
    store = LocalDirStore(tmp_path)
    assert hb.read_record(store, "cfw") is None
    record = GuardRecord(checked_at=NOW, active_at=NOW)
    hb.write_record(store, "cfw", record)
    assert (tmp_path / "cfw" / ".cfw" / "guard.json").is_file()
    assert hb.read_record(store, "cfw") == record
    store.put(hb.guard_key("cfw"), b"garbage")
    assert isinstance(hb.read_record(store, "cfw"), Unreadable)

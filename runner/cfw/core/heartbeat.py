"""What a run and the guard keep in the environment's storage: heartbeats and the guard's
record, their JSON, where they live, and the store they live in.

Under the environment's storage prefix:

    <prefix>/.cfw/runs/<run id>.json   one per active run: written when the run starts
                                       (before its first job), rewritten about once a
                                       minute (INTERVAL), deleted when the run ends
    <prefix>/.cfw/guard.json           the guard's record: when it last checked and saw
                                       activity, whether it stopped what bills, its history

A store is anything with put/get/delete/list of small objects (HeartbeatStore); each kind
brings its own (S3, GCS, Azure Blob); LocalDirStore is a directory (local kind, tests).

Standard library only (and cfw.core.guard, which is too): the cloud guard is zipped with
these two files.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import secrets
import socket
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cfw.core.guard import HISTORY_LIMIT, Beat, Event, GuardRecord, Unreadable

SCHEMA = "cfw.heartbeat"
VERSION = 1
RECORD_SCHEMA = "cfw.guard"
RECORD_VERSION = 1
INTERVAL = timedelta(minutes=1)  # how often a run rewrites its heartbeat
MAX_BYTES = 64 * 1024  # anything larger is not a heartbeat
# a run id that every cloud's labels keep as it is (jobs carry it as their cfw-run label)
RUN_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Heartbeat:
    run_id: str
    owner: str  # user@host of the runner
    pid: int  # the runner's process on that host
    started_at: datetime
    updated_at: datetime  # the runner's clock (the guard goes by the object's own time)
    jobs_active: int
    kind: str
    env: str
    cfw_version: str

    def beat(self, now: datetime, jobs_active: int) -> Heartbeat:
        """The next write: same run, new time and count."""
        return replace(self, updated_at=_utc(now).replace(microsecond=0), jobs_active=jobs_active)


@dataclass(frozen=True)
class Corrupt:
    """An object that is not a readable heartbeat (corrupt, foreign, or from another run)."""

    problem: str


def start(
    run_id: str, *, kind: str, env: str, cfw_version: str, now: datetime, jobs_active: int = 0
) -> Heartbeat:
    """The first heartbeat of a run started by this process. Times are kept to the second."""
    now = _utc(now).replace(microsecond=0)
    return Heartbeat(run_id, owner(), os.getpid(), now, now, jobs_active, kind, env, cfw_version)


def owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


# -- JSON -----------------------------------------------------------------------------------

_FIELDS: dict[str, type] = {
    "run_id": str,
    "owner": str,
    "pid": int,
    "started_at": datetime,
    "updated_at": datetime,
    "jobs_active": int,
    "kind": str,
    "env": str,
    "cfw_version": str,
}


def encode(heartbeat: Heartbeat) -> bytes:
    if not RUN_ID_RE.match(heartbeat.run_id):
        raise ValueError(f"run id {heartbeat.run_id!r} cannot name a heartbeat object")
    body: dict[str, Any] = {"schema": SCHEMA, "version": VERSION}
    for name, kind in _FIELDS.items():
        value = getattr(heartbeat, name)
        body[name] = _iso(value) if kind is datetime else value
    return (json.dumps(body, indent=2) + "\n").encode()


def decode(data: bytes | str) -> Heartbeat | Corrupt:
    """A heartbeat, or Corrupt saying why not; never an exception. A newer version's record
    is read by the fields this version knows."""
    if len(data) > MAX_BYTES:
        return Corrupt(f"{len(data)} bytes: larger than a heartbeat can be")
    try:
        body = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError:
        return Corrupt("not UTF-8 text")
    except json.JSONDecodeError as exc:
        return Corrupt(f"not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")
    except (ValueError, RecursionError):  # a number too long, nesting too deep
        return Corrupt("not JSON that a heartbeat can be")
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        return Corrupt(f"not a cfw heartbeat (no schema {SCHEMA!r})")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return Corrupt(f"field 'version': expected a number from 1, got {_short(version)}")
    values: dict[str, Any] = {}
    for name, kind in _FIELDS.items():
        if name not in body:
            return Corrupt(f"field {name!r} is missing")
        value = body[name]
        if kind is datetime:
            try:
                value = _time(value)
            except (TypeError, ValueError):
                value = None
            if value is None:
                return Corrupt(
                    f"field {name!r}: expected an ISO time with a zone, got {_short(body[name])}"
                )
        elif kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return Corrupt(f"field {name!r}: expected a whole number from 0, got {_short(value)}")
        elif kind is str and not isinstance(value, str):
            return Corrupt(f"field {name!r}: expected text, got {_short(value)}")
        values[name] = value
    if not RUN_ID_RE.match(values["run_id"]):
        return Corrupt(f"field 'run_id': {_short(values['run_id'])} is not a run id")
    return Heartbeat(**values)


def encode_record(record: GuardRecord) -> bytes:
    body = {
        "schema": RECORD_SCHEMA,
        "version": RECORD_VERSION,
        "enabled": record.enabled,
        "checked_at": _iso(record.checked_at),
        "active_at": _iso(record.active_at),
        "stopped_at": _iso(record.stopped_at),
        "stopped_cause": record.stopped_cause,
        "history": [
            {"at": _iso(e.at), "action": e.action, "cause": e.cause, "reason": e.reason}
            | ({"run_id": e.run_id} if e.run_id else {})
            for e in record.history
        ],
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def decode_record(data: bytes | str) -> GuardRecord | Unreadable:
    """The guard's record, or Unreadable saying why not; never an exception."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("schema") != RECORD_SCHEMA:
            return Unreadable(f"not a cfw guard record (no schema {RECORD_SCHEMA!r})")
        history = tuple(
            Event(_time(e["at"]), e["action"], e["cause"], e["reason"], e.get("run_id"))
            for e in body.get("history") or []
        )
        texts = [v for e in history for v in (e.action, e.cause, e.reason, e.run_id or "")]
        if not all(isinstance(v, str) for v in texts):
            return Unreadable("history: an action, cause, reason or run id is not text")
        return GuardRecord(
            enabled=body.get("enabled", True) is not False,
            checked_at=_time(body.get("checked_at")),
            active_at=_time(body.get("active_at")),
            stopped_at=_time(body.get("stopped_at")),
            stopped_cause=str(body.get("stopped_cause") or ""),
            history=history[-HISTORY_LIMIT:],
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        return Unreadable(f"{type(exc).__name__}: {exc}"[:200])


# -- where they live ----------------------------------------------------------------------


def runs_prefix(prefix: str) -> str:
    return _join(prefix, ".cfw/runs/")


def run_key(prefix: str, run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise ValueError(f"run id {run_id!r} cannot name a heartbeat object")
    return runs_prefix(prefix) + f"{run_id}.json"


def guard_key(prefix: str) -> str:
    return _join(prefix, ".cfw/guard.json")


def run_id_of(key: str, prefix: str) -> str | None:
    """The run a heartbeat key names, or None for any other key."""
    rest = key.removeprefix(runs_prefix(prefix))
    if rest == key or not rest.endswith(".json"):
        return None
    run_id = rest.removesuffix(".json")
    return run_id if RUN_ID_RE.match(run_id) else None


def _join(prefix: str, path: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{path}" if prefix else path


# -- stores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    last_modified: datetime  # the storage's own clock


class HeartbeatStore(Protocol):
    """Small objects by key. get of a missing key is None; delete of one is no error."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> list[ObjectInfo]: ...


@dataclass(frozen=True)
class Stored:
    """One heartbeat object read back."""

    key: str
    run_id: str  # from the key
    last_modified: datetime
    record: Heartbeat | Corrupt

    @property
    def beat(self) -> Beat:
        """What the guard decides on."""
        if isinstance(self.record, Corrupt):
            return Beat(self.run_id, self.last_modified, problem=self.record.problem)
        return Beat(self.run_id, self.last_modified, self.record.owner, self.record.updated_at)


def write(store: HeartbeatStore, prefix: str, heartbeat: Heartbeat) -> None:
    store.put(run_key(prefix, heartbeat.run_id), encode(heartbeat))


def remove(store: HeartbeatStore, prefix: str, run_id: str) -> None:
    store.delete(run_key(prefix, run_id))


def read_all(store: HeartbeatStore, prefix: str) -> list[Stored]:
    """Every heartbeat object, by run id; one that vanished since the listing (its run
    ended) is left out, one that cannot be read is there as Corrupt."""
    found = []
    for info in store.list(runs_prefix(prefix)):
        run_id = run_id_of(info.key, prefix)
        if run_id is None:
            continue
        body = store.get(info.key)
        if body is None:
            continue
        record = decode(body)
        if isinstance(record, Heartbeat) and record.run_id != run_id:
            record = Corrupt(f"names run {record.run_id!r} but is stored as run {run_id!r}")
        found.append(Stored(info.key, run_id, _utc(info.last_modified), record))
    return sorted(found, key=lambda s: s.run_id)


def read_record(store: HeartbeatStore, prefix: str) -> GuardRecord | Unreadable | None:
    """The guard's record; None before its first check."""
    body = store.get(guard_key(prefix))
    return None if body is None else decode_record(body)


def write_record(store: HeartbeatStore, prefix: str, record: GuardRecord) -> None:
    store.put(guard_key(prefix), encode_record(record))


class LocalDirStore:
    """A HeartbeatStore in a directory: a key is a relative path; a write is atomic, so a
    reader never sees half a heartbeat; last_modified is the file's mtime."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def put(self, key: str, body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(IsADirectoryError, NotADirectoryError):
            self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[ObjectInfo]:
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise ValueError(f"{prefix!r} is not a store prefix (relative, no '..')")
        top = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        found = []
        for folder, _dirs, files in os.walk(top):
            for name in files:
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix) or (name.startswith(".") and name.endswith(".tmp")):
                    continue
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:  # deleted since the walk saw it
                    continue
                found.append(ObjectInfo(key, datetime.fromtimestamp(mtime, UTC)))
        return sorted(found, key=lambda o: o.key)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or "\\" in key or "\0" in key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{key!r} is not a store key (relative, '/'-separated, no '..')")
        return self.root.joinpath(*parts)


# -- times ----------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _time(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO time, got {_short(value)}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return parsed.astimezone(UTC)

"""The guard's Cloud Function for google-batch (modules/gcp-guard): its zip
(cfw.backends._google.guard_zip: deterministic, only what one check imports, pinned
requirements, importable on its own) and its entry `guard(request)` called in-process as the
Functions Framework calls it, with the variables the root module sets, against the fake Batch
service and the GCS emulator: an orphaned run's jobs are deleted and a live run's left, past
the ttl every job goes, idle stops nothing (nothing bills), and the record is where
`cfw status` reads it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import flask
import pytest

from cfw.backends._google import guard_function, guard_zip
from cfw.backends.google_batch import guard as guard_module
from cfw.backends.google_batch.store import gcs_store
from cfw.core import heartbeat
from cfw.orchestration import guarding
from google_batch.test_guard import ENV_ID, LIVE, beat, fake_up, short, submit
from support.fake_google import PROJECT, FakeGoogle

ADAPTER = "cfw.backends.google_batch.guard"
DEAD = "01011200dead"


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


@pytest.fixture
def bucket(gcs_env) -> str:
    from google.cloud import storage

    name = f"gcp-batch-{uuid.uuid4().hex[:10]}-data"
    storage.Client(project=PROJECT).create_bucket(name)
    return name


@pytest.mark.parametrize("adapter", sorted(guard_zip.NEEDS))
def test_the_zip_is_deterministic_and_holds_only_one_check(adapter):
    first, second = guard_zip.build_zip(adapter), guard_zip.build_zip(adapter)
    assert first == second and guard_zip.digest(adapter) == guard_zip.digest(adapter)
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
        main = archive.read("main.py").decode()
        requirements = archive.read("requirements.txt").decode().splitlines()
    names = [i.filename for i in infos]
    assert names == sorted(names) and {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    assert all(n in ("main.py", "requirements.txt") or n.startswith("cfw/") for n in names)
    assert "from cfw.backends._google.guard_function import guard" in main
    kind = adapter.split(".")[2]
    assert f"cfw/backends/{kind}/guard.py" in names and "cfw/core/guard_check.py" in names
    other = ({"google_batch", "gke"} - {kind}).pop()
    assert not any(f"/{other}/" in n for n in names)  # one kind's adapter only
    assert not any("_aws" in n or "config.py" in n for n in names)  # no pydantic model
    wanted = {"google_batch": "google-cloud-batch", "gke": "google-cloud-container"}[kind]
    assert any(r.startswith(f"{wanted}>=") for r in requirements)
    assert any(r.startswith("functions-framework>=") for r in requirements)


def test_the_pins_admit_the_versions_cfw_is_tested_with():
    """Each pin is `>=LOW,<HIGH`; what is installed here (the tested version) is inside."""
    from packaging.specifiers import SpecifierSet

    for dist, pin in guard_zip.PINS.items():
        if dist == "functions-framework":
            continue  # the runtime's; not installed here
        spec = SpecifierSet(pin.removeprefix(dist))
        assert version(dist) in spec, f"{dist} {version(dist)} is outside {pin}: update PINS"


@pytest.mark.parametrize("adapter", sorted(guard_zip.NEEDS))
def test_the_zip_imports_on_its_own(adapter, tmp_path):
    """As the runtime imports it: the zip and the SDKs, no cfw installed (-S: no site, so
    neither this checkout nor the editable install is on the path)."""
    path = guard_zip.write(adapter, tmp_path)
    unpacked = tmp_path / "src"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked)
    import google.auth

    site = str(Path(google.auth.__file__).resolve().parents[2])
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import importlib, cfw, main\n"
        f"module = importlib.import_module({adapter!r})\n"
        "assert callable(module.from_environ) and callable(main.guard)\n"
        "print(cfw.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(unpacked), site],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(unpacked)), proc.stdout


def call(monkeypatch, fake, bucket: str, **settings: str) -> dict:
    """The function's entry, with the variables the root module sets
    (templates/root/google-batch.tf.j2 and modules/gcp-guard) and the fake's clients."""
    monkeypatch.setattr(guard_module, "Clients", lambda p, r: fake.clients(p, r))
    variables = {
        "CFW_GUARD_ADAPTER": f"{ADAPTER}:from_environ",
        "CFW_GUARD_PROJECT": PROJECT,
        "CFW_GUARD_REGION": "us-central1",
        "CFW_GUARD_ENV_ID": ENV_ID,
        "CFW_GUARD_STORE": f"gs://{bucket}",
        "CFW_GUARD_INTERVAL": "300",
        "CFW_GUARD_ORPHAN_AFTER": "900",
        "CFW_GUARD_IDLE_AFTER": "1800",
        "CFW_GUARD_EXPIRES_AT": "never",
        **settings,
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    request = flask.Request.from_values(method="POST", json={})  # Cloud Scheduler's body
    body, status, headers = guard_function.guard(request)
    assert (status, headers) == (200, {"Content-Type": "application/json"})
    return json.loads(body)


def test_the_function_deletes_an_orphaned_runs_jobs_and_leaves_the_live_run(
    fake, bucket, tmp_path, monkeypatch, capsys
):
    """DEAD's runner died before it wrote a heartbeat; its jobs were created an hour ago.
    LIVE's heartbeat is fresh (the storage's clock)."""
    dead = submit(fake, tmp_path, DEAD, 2)
    live = submit(fake, tmp_path, LIVE, 1)
    for name in dead:
        fake.batch.jobs[short(name)].create_time = datetime.now(UTC) - timedelta(hours=1)
    project = tmp_path / "proj"
    fake_up(project, bucket)
    heartbeat.write(gcs_store(PROJECT, bucket), "", beat(LIVE))

    result = call(monkeypatch, fake, bucket)
    assert [(a["action"], a["cause"], a["run"]) for a in result["actions"]] == [
        ("cancel", "orphan", DEAD)
    ]
    assert result["errors"] == [] and json.loads(capsys.readouterr().out) == result
    states = {n: j.status.state.name for n, j in fake.batch.jobs.items()}
    assert {states[short(j)] for j in dead} == {"DELETION_IN_PROGRESS"}
    assert states[short(live[0])] == "QUEUED"

    monkeypatch.setattr(guard_module, "Clients", lambda p, r: fake.clients(p, r))
    shown = guarding.status_view(project, "google-batch", os.environ)  # what `cfw status` shows
    assert shown["guard"]["checked_at"] is not None
    [line] = shown["guard"]["last_actions"]
    assert line.startswith(f"cancel (orphan): run {DEAD} has 2 jobs") and "no heartbeat" in line


def test_past_the_ttl_the_function_deletes_every_job_and_idle_stops_nothing(
    fake, bucket, tmp_path, monkeypatch
):
    jobs = submit(fake, tmp_path, LIVE, 2)
    result = call(monkeypatch, fake, bucket, CFW_GUARD_EXPIRES_AT="20200101t000000z")
    assert [(a["action"], a["cause"]) for a in result["actions"]] == [
        ("cancel", "ttl"),
        ("stop", "ttl"),
    ]
    assert any("nothing to stop" in line for line in result["done"])
    assert {fake.batch.jobs[short(j)].status.state.name for j in jobs} == {"DELETION_IN_PROGRESS"}
    fake.batch.settle()

    other = f"{bucket}-idle"
    from google.cloud import storage

    storage.Client(project=PROJECT).create_bucket(other)
    first = call(monkeypatch, fake, other, CFW_GUARD_IDLE_AFTER="0")  # no run, no job
    assert [(a["action"], a["cause"]) for a in first["actions"]] == [("stop", "idle")]
    assert any("nothing bills while idle" in line for line in first["done"])
    assert first["stopped_since"] is not None
    again = call(monkeypatch, fake, other, CFW_GUARD_IDLE_AFTER="0")
    assert again["actions"] == []  # stopped stays stopped

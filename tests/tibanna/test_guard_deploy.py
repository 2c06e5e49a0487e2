"""The guard's Lambda zip (cfw.backends._aws.guard_zip) and its handler's settings
(cfw.backends._aws.guard_lambda): deterministic bytes, relative paths, only the files one
check needs, importable on its own (with nothing but the zip and boto3 on the path), and
the rendered root's hash is the zip's. What `cfw up` makes of it against moto:
tests/tibanna/test_e2e.py and tests/tes/test_module.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from cfw.backends._aws import guard_lambda, guard_zip
from support.render import render_example

ADAPTERS = ("cfw.backends.tibanna.guard", "cfw.backends.tes.guard")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_zip_is_deterministic_with_relative_paths_and_stable_times(adapter):
    first, second = guard_zip.build_zip(adapter), guard_zip.build_zip(adapter)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert all(n.startswith("cfw/") and ".." not in n and n.endswith(".py") for n in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    kind = adapter.split(".")[2]
    assert f"cfw/backends/{kind}/guard.py" in names
    assert "cfw/core/guard_check.py" in names and "cfw/backends/_aws/store.py" in names
    other = ({"tibanna", "tes"} - {kind}).pop()
    assert not any(f"/{other}/" in n for n in names)  # one kind's adapter only
    assert len(names) < 20


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_zip_imports_on_its_own(adapter, tmp_path):
    """As the Lambda runtime imports it: the zip and boto3, no cfw installed (-S: no site,
    so neither this checkout nor the editable install is on the path)."""
    path = guard_zip.write(adapter, tmp_path)
    site = str(Path(boto3.__file__).resolve().parents[1])
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import importlib, cfw\n"
        "from cfw.backends._aws import guard_lambda\n"
        f"module = importlib.import_module({adapter!r})\n"
        "assert callable(module.from_environ) and callable(guard_lambda.handler)\n"
        "print(cfw.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(path), site],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(path)), proc.stdout


@pytest.mark.parametrize("kind", ["tibanna", "tes"])
def test_the_rendered_root_deploys_this_zip(kind, tmp_path):
    out = render_example(kind, tmp_path / kind)
    values = json.loads((out / "terraform.tfvars.json").read_text())
    package = values["guard_package"]
    assert not package["filename"].startswith("/")  # relative to the root module
    zipped = out / package["filename"]
    assert zipped.is_file()
    adapter = f"cfw.backends.{kind}.guard"
    assert zipped.read_bytes() == guard_zip.build_zip(adapter)
    assert package["source_code_hash"] == guard_zip.digest(adapter)
    assert values["guard_settings"]["interval_minutes"] == 5


def test_the_handler_reads_its_settings_from_the_environment():
    settings = guard_lambda.settings_from(
        {
            "CFW_GUARD_INTERVAL": "120",
            "CFW_GUARD_ORPHAN_AFTER": "600",
            "CFW_GUARD_IDLE_AFTER": "off",
            "CFW_GUARD_EXPIRES_AT": "20260101t080000z",
        }
    )
    assert settings.interval == timedelta(minutes=2)
    assert settings.orphan_after == timedelta(minutes=10) and settings.idle_after is None
    assert settings.expires_at.isoformat() == "2026-01-01T08:00:00+00:00"
    never = guard_lambda.settings_from(
        {
            "CFW_GUARD_INTERVAL": "300",
            "CFW_GUARD_ORPHAN_AFTER": "900",
            "CFW_GUARD_IDLE_AFTER": "1800",
        }
    )
    assert never.expires_at is None and never.idle_after == timedelta(minutes=30)


def test_the_handler_builds_only_cfws_adapters():
    with pytest.raises(ValueError, match="not a cfw adapter"):
        guard_lambda.adapter_from({"CFW_GUARD_ADAPTER": "os:system"}, None)

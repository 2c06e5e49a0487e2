"""Config validation: each mistake gives one line naming the field, the value and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.backends.registry import resolve, write_config
from cfw.core.config import parse_duration
from cfw.core.errors import UserError
from cfw.core.guard import Settings

MISTAKES = [
    # (config text, fragments the one-line message must contain)
    ("kind: local\nttl: 8x\n", ["field 'ttl'", "'8x'", "30m, 8h, 2d or 1w"]),
    (
        "kind: locl\n",
        ["field 'kind'", "'locl'", "local, gke, tibanna, tes, azure-batch, google-batch"],
    ),
    (
        "kind: local\nteardown: sometimes\n",
        ["field 'teardown'", "'sometimes'", "'manual' or 'after-run'"],
    ),
    ("kind: local\nstorage: {provider: s3}\n", ["field 'storage'", "prefix: s3://BUCKET"]),
    ("kind: local\ncolour: red\n", ["unknown field 'colour'", "allowed fields here:", "storage"]),
    ("ttl: 8h\n", ["field 'kind' is required", "add kind:"]),
    ("kind: local\nlabels: {Team: x}\n", ["field 'labels'", "'Team'", "lowercase"]),
    ("kind: local\nlabels: {cfw-id: x}\n", ["field 'labels'", "reserved"]),
    ("kind: local\njobs: 0\n", ["field 'jobs'", "0", "greater than or equal to 1"]),
    (
        "kind: local\nstorage: {provider: disk, prefix: 's3://x'}\n",
        ["field 'storage'", "provider s3 only"],
    ),
    ("kind: local\nstate: {backend: s3}\n", ["field 'state'", "needs bucket, key"]),
    ("kind: local\nstate: {backend: consul}\n", ["field 'state.backend'", "'consul'", "'s3'"]),
    ("kind: local\nname: other\n", ["'other'", "file is named 't'", "rename the file"]),
    ("kind: [local\n", ["environments/t.yaml: line 2", "fix the YAML syntax"]),
    ("- a\n- b\n", ["expected a mapping of settings, got list"]),
    (
        "kind: local\nkeep_sandboxes: sometimes\n",
        ["field 'keep_sandboxes'", "'never', 'on-failure' or 'always'"],
    ),
    (
        "kind: local\nstorage: {provider: disk, extra: 1}\n",
        ["unknown field 'storage.extra'", "root"],
    ),
    ("kind: local\nguard: {colour: red}\n", ["unknown field 'guard.colour'", "orphan_after"]),
    ("kind: local\nguard: {interval: 30s}\n", ["field 'guard.interval'", "'30s'", "1m to 1h"]),
    ("kind: local\nguard: {interval: 90s}\n", ["field 'guard.interval'", "whole minutes"]),
    ("kind: local\nguard: {interval: 2h}\n", ["field 'guard.interval'", "1m to 1h"]),
    ("kind: local\nguard: {interval: soon}\n", ["field 'guard.interval'", "30m, 8h"]),
    (
        "kind: local\nguard: {orphan_after: 4m}\n",
        ["field 'guard.orphan_after'", "'4m'", "at least 10m", "twice guard.interval (5m)"],
    ),
    (
        "kind: local\nguard: {interval: 10m, orphan_after: 15m}\n",
        ["field 'guard.orphan_after'", "at least 20m"],
    ),
    (
        "kind: local\nguard: {idle_after: never}\n",
        ["field 'guard.idle_after'", "'never'", "such as 30m or 2h, or off"],
    ),
    (
        "kind: local\nguard: {interval: 10m, orphan_after: 20m, idle_after: 5m}\n",
        ["field 'guard.idle_after'", "at least guard.interval (10m)"],
    ),
    ("kind: local\nguard: {enabled: maybe}\n", ["field 'guard.enabled'", "'maybe'", "boolean"]),
]


@pytest.mark.parametrize(("text", "fragments"), MISTAKES, ids=[m[1][0] for m in MISTAKES])
def test_each_mistake_names_field_value_and_fix(tmp_path: Path, text: str, fragments: list[str]):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "t.yaml").write_text(text)
    with pytest.raises(UserError) as caught:
        resolve(tmp_path, "t", environ={})
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_environment_name_says_how_to_create_it(tmp_path: Path):
    with pytest.raises(UserError) as caught:
        resolve(tmp_path, "nosuch", environ={})
    assert "no environment named 'nosuch'" in str(caught.value)
    assert "cfw init KIND --name nosuch" in str(caught.value)


def test_invalid_environment_name(tmp_path: Path):
    with pytest.raises(UserError, match="not a valid environment name"):
        resolve(tmp_path, "Bad_Name", environ={})


def test_kind_name_means_its_defaults_and_resolved_file_is_written(tmp_path: Path):
    resolved = resolve(tmp_path, "local", overrides=["ttl=2h", "jobs=3"], environ={})
    assert resolved.path is None and resolved.config.ttl == timedelta(hours=2)
    path = write_config(tmp_path, resolved)
    again = resolve(tmp_path, "local", environ={})
    assert again.path == path
    assert again.config == resolved.config
    assert "ttl: 2h" in path.read_text()


def test_guard_defaults_and_what_is_written(tmp_path: Path):
    resolved = resolve(tmp_path, "local", environ={})
    guard = resolved.config.guard
    assert (guard.enabled, guard.interval, guard.orphan_after, guard.idle_after) == (
        True,
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(minutes=30),
    )
    assert "guard" not in write_config(tmp_path, resolved).read_text()  # defaults stay implicit


@pytest.mark.parametrize(
    ("text", "written", "settings"),
    [
        (
            "guard: {idle_after: off}",  # YAML reads a bare off as false
            "guard:\n  idle_after: 'off'\n",
            Settings(idle_after=None),
        ),
        ("guard: {idle_after: 'off'}", "idle_after: 'off'", Settings(idle_after=None)),
        ("guard: off", "guard:\n  enabled: false\n", Settings(enabled=False)),
        ("guard: {enabled: false}", "enabled: false", Settings(enabled=False)),
        (
            "guard: {interval: 1m, orphan_after: 5m, idle_after: 1m}",
            "guard:\n  interval: 1m\n  orphan_after: 5m\n  idle_after: 1m\n",
            Settings(
                interval=timedelta(minutes=1),
                orphan_after=timedelta(minutes=5),
                idle_after=timedelta(minutes=1),
            ),
        ),
        (
            "guard: {interval: 1h, orphan_after: 2h, idle_after: 1d}",
            "  interval: 1h\n  orphan_after: 2h\n  idle_after: 1d\n",
            Settings(
                interval=timedelta(hours=1),
                orphan_after=timedelta(hours=2),
                idle_after=timedelta(days=1),
            ),
        ),
    ],
)
def test_guard_settings_round_trip(tmp_path: Path, text: str, written: str, settings: Settings):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "t.yaml").write_text(f"kind: local\n{text}\n")
    resolved = resolve(tmp_path, "t", environ={})
    assert resolved.config.guard.settings() == settings
    expires = datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert resolved.config.guard.settings(expires).expires_at == expires
    assert written in write_config(tmp_path, resolved).read_text()
    assert resolve(tmp_path, "t", environ={}).config == resolved.config


def test_ttl_takes_minutes(tmp_path: Path):
    resolved = resolve(tmp_path, "local", overrides=["ttl=2m"], environ={})
    assert resolved.config.ttl == timedelta(minutes=2)
    assert "ttl: 2m" in write_config(tmp_path, resolved).read_text()


def test_set_override_must_be_key_value(tmp_path: Path):
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        resolve(tmp_path, "local", overrides=["ttl"], environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("8h", timedelta(hours=8)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (90, timedelta(seconds=90)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["0h", "h", "8 hours", "-1d", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_every_example_config_validates():
    from cfw.backends.registry import kind_names
    from cfw.core.assets import example_environments_dir

    examples = example_environments_dir()
    for kind in kind_names():
        path = examples / f"{kind}.yaml"
        assert path.exists(), f"no example config for kind {kind}"
        resolved = resolve(examples.parent, kind, environ={})
        assert resolved.kind.name == kind
        assert resolved.path == path


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file"),
        (b"kind: local\nttl: \xff\xfe8h\n", "is not UTF-8 text"),
    ],
    ids=["binary", "latin-1"],
)
def test_binary_config_is_a_user_mistake(tmp_path: Path, data: bytes, says: str):
    from conftest import run_cfw

    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "t.yaml").write_bytes(data)
    with pytest.raises(UserError) as caught:
        resolve(tmp_path, "t", environ={})
    assert says in caught.value.message and "YAML text" in caught.value.hint
    result = run_cfw(["plan", "t"], cwd=tmp_path)
    assert result.code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr
    assert not (tmp_path / ".cfw").exists()

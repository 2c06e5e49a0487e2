"""CLI wiring: commands, exit codes, one-line errors, --json, completion, no cloud SDK needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cfw

COMMANDS = ["init", "plan", "up", "down", "render", "status", "reap", "run", "logs"]


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help_lists_every_command(tmp_path: Path):
    result = run_cfw(["--help"], cwd=tmp_path)
    assert result.code == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert "--install-completion" in result.stdout


def test_version(tmp_path: Path):
    from cfw import __version__

    result = run_cfw(["--version"], cwd=tmp_path)
    assert result.code == 0 and result.stdout.strip() == f"cfw {__version__}"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["up"], "Missing argument 'name'"),
        (["up", "local", "--bogus"], "No such option: --bogus"),
        (["up", "nosuchenv", "--yes"], "no environment named 'nosuchenv'"),
        (["up", "Bad_Name", "--yes"], "not a valid environment name"),
        (["up", "local", "--yes", "--ttl", "forever"], "field 'ttl'"),
        (["up", "local", "--yes", "--set", "nokey"], "expected KEY=VALUE"),
        (["status", "nosuch"], "environment 'nosuch' is not up here"),
        (["logs", "local", "42"], "environment 'local' has no runs here"),
        (["logs", "Bad_Name", "42"], "not a valid environment name"),
        (["down", "Bad_Name", "--yes"], "not a valid environment name"),
        (["run", "--executor", "slurm"], "does not take --executor"),
        (["run", "--env", "nosuchenv"], "no environment named 'nosuchenv'"),
        (["init", "k8s"], "'k8s' is not a known kind"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, fragment, tmp_path: Path):
    result = run_cfw(args, cwd=tmp_path)
    assert result.code == 2, result.output
    assert fragment in one_line_error(result)
    assert not (tmp_path / ".cfw" / "local" / "cfw.json").exists()  # nothing half-created


def test_debug_shows_the_traceback(tmp_path: Path):
    env = {**os.environ, "CFW_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "cfw", "up", "nosuchenv", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr


def test_status_json_is_only_json_on_stdout(tmp_path: Path, sandbox_base: Path):
    assert run_cfw(["up", "local", "--yes"], cwd=tmp_path).code == 0
    result = run_cfw(["status", "--json"], cwd=tmp_path)
    data = json.loads(result.stdout)  # nothing else on stdout
    assert [e["name"] for e in data] == ["local"]
    assert set(data[0]) >= {"name", "kind", "state", "age", "expires_at", "jobs_running"}
    table = run_cfw(["status"], cwd=tmp_path)
    assert "local" in table.stdout and "up" in table.stdout
    assert run_cfw(["down", "local", "--yes"], cwd=tmp_path).code == 0


def test_shell_completion_of_commands_and_environment_names(tmp_path: Path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "mylocal.yaml").write_text("kind: local\n")
    env = {**os.environ, "_CFW_COMPLETE": "complete_bash"}

    def complete(words: str, index: int) -> list[str]:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "cfw")],
            cwd=tmp_path,
            env={**env, "COMP_WORDS": words, "COMP_CWORD": str(index)},
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.split()

    assert complete("cfw u", 1) == ["up", "users"]
    assert complete("cfw up my", 2) == ["mylocal"]
    assert "google-batch" in complete("cfw init goo", 2)


BLOCKER = """
import importlib.abc, sys
BLOCKED = ("kubernetes", "google", "azure", "boto3", "botocore", "tes", "tibanna")
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def test_core_needs_no_cloud_sdk(tmp_path: Path):
    """--help, init, status and local's translation work with every cloud SDK missing;
    a cloud kind's backend says which extra to install."""
    script = (
        BLOCKER
        + """
from cfw.cli import main
import cfw.backends.local.backend  # the local backend imports no SDK
from cfw.backends.registry import get_kind, kind_names
for name in kind_names():
    get_kind(name)  # kind modules import no SDK either
try:
    main(sys.argv[1:])
except SystemExit as exc:
    sys.exit(exc.code)
"""
    )
    for args in (["--help"], ["init", "local"], ["status"]):
        proc = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr

"""Start-up: `import cfw.cli`, `cfw --help`, `cfw --version` and `cfw status` (no
environment here) import only what they use.

Each check runs a fresh interpreter and reads its sys.modules, so a heavy import that
creeps back into a command module (at module level) fails here, naming the module and the
chain that pulled it in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Not in `import cfw.cli`, nor in `cfw --help` / `cfw --version`: the run machinery, the
# config models, templates, cloud SDKs, Rich's help panels and package metadata.
HEAVY = (
    "snakemake",
    "snakemake_interface_executor_plugins",
    "jinja2",
    "pydantic",
    "yaml",
    "asyncio",
    "boto3",
    "botocore",
    "google",
    "kubernetes",
    "azure",
    "cfw.executor",
    "cfw.orchestration",
    "cfw.core.config",
    "cfw.core.render",
    "typer.rich_utils",
    "importlib.metadata",
)
# `cfw --help` prints without Rich at all (its console is made for the first message)
HELP_ALSO = ("rich",)

PROBE = """
import json, sys
sys.argv = ["cfw", *sys.argv[1:]]
{body}
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""
RUN_MAIN = """
from cfw.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def imported_by(body: str, *args: str, cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def heavy_in(modules: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def test_import_cfw_cli_is_light(tmp_path: Path):
    modules = imported_by("import cfw.cli", cwd=tmp_path)
    assert "cfw.cli.envs" in modules and "typer" in modules  # the commands are registered
    assert heavy_in(modules, HEAVY) == []


@pytest.mark.parametrize(
    ("args", "heavy"),
    [
        (["--help"], HEAVY + HELP_ALSO),
        (["--version"], HEAVY),
        # with no environment here: nothing to read, so no config model, no lifecycle, and
        # its plain options parsed without Typer's pydantic adapters
        (["status"], HEAVY),
        (["status", "--json"], HEAVY),
    ],
)
def test_common_commands_import_only_what_they_use(args, heavy, tmp_path: Path):
    modules = imported_by(RUN_MAIN, *args, cwd=tmp_path)
    assert heavy_in(modules, heavy) == []


def test_status_with_records_still_reads_them(tmp_path: Path):
    """The light path is only for a directory without .cfw/: with records there, status
    reads them (the config models and the lifecycle are imported)."""
    (tmp_path / ".cfw").mkdir()
    modules = imported_by(RUN_MAIN, "status", cwd=tmp_path)
    assert "cfw.orchestration.status" in modules


def test_version_still_reads_the_package_metadata(tmp_path: Path):
    from importlib.metadata import version

    import cfw

    assert cfw.__version__ == version("cfw")
    with pytest.raises(AttributeError):
        cfw.no_such_attribute  # noqa: B018

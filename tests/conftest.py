"""Shared fixtures: the real Terraform binary with the on-disk provider mirror, a moto
server and a GCS emulator on 127.0.0.1, fresh project directories, and cfw run as a user
runs it.

Required tools are required: a missing Terraform or mirror fails the tests, it does not
skip them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
WORKFLOWS = Path(__file__).resolve().parent / "workflows"


# -- workers -----------------------------------------------------------------------------
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: two workers per core. The suite waits more than it computes (the aws
    provider's polls against moto, a bucket's lifecycle settling for most of a minute, job
    subprocesses): with one worker per core a core sits idle for a third of the run."""
    return 2 * (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


# the files whose tests bring whole environments up and down against moto, longest first
# (minutes each: CI's --durations list); `--dist load` hands the first tests out one per
# worker, so these start at once instead of holding the run open at its end
LONGEST = (
    "tibanna/test_e2e.py",
    "tes/test_module.py",
    "tes/test_e2e.py",
    "azure_batch/test_e2e.py",
    "tes/test_faults.py",
    "tibanna/test_faults.py",
    "core/test_packaging.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Longest first: LONGEST, then Terraform against moto, then real workflows, then the
    rest, so that the short tests fill the gaps at the end."""

    def weight(item) -> tuple[int, int]:
        path = item.path.as_posix()
        for rank, name in enumerate(LONGEST):
            if path.endswith(f"/tests/{name}"):
                return (0, rank)
        if item.get_closest_marker("moto"):
            return (1, 0)
        return (2, 0) if item.get_closest_marker("e2e") else (3, 0)

    items.sort(key=weight)


# -- Terraform ---------------------------------------------------------------------------
def find_plugin_mirror() -> Path | None:
    """The provider mirror: $CFW_TF_PLUGIN_MIRROR, else a registry.terraform.io directory
    at most four levels below / (as the machine's notes describe)."""
    given = os.environ.get("CFW_TF_PLUGIN_MIRROR")
    if given:
        return Path(given)
    for top in sorted(Path("/").iterdir()):
        if top.name in ("proc", "sys", "dev", "run") or not top.is_dir():
            continue
        for depth_root, dirs, _ in os.walk(top):
            depth = len(Path(depth_root).relative_to("/").parts)
            if "registry.terraform.io" in dirs and depth <= 3:
                return Path(depth_root)
            if depth >= 3:
                dirs[:] = []
    return None


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory) -> dict[str, str]:
    """Environment variables that give Terraform our own CLI config with the mirror."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform >= 1.5 (the tests need it)")
    mirror = find_plugin_mirror()
    if mirror is None or not (mirror / "registry.terraform.io").is_dir():
        pytest.fail("no Terraform provider mirror found: set CFW_TF_PLUGIN_MIRROR")
    rc = tmp_path_factory.mktemp("terraform") / "terraform.rc"
    rc.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
    )
    return {"TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1"}


@pytest.fixture(autouse=True)
def _terraform_config(terraform_env, monkeypatch) -> None:
    for key, value in terraform_env.items():
        monkeypatch.setenv(key, value)


# -- servers the tests start: moto, the GCS emulator ---------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _serve(argv: list[str], ready_path: str) -> Iterator[str]:
    """Run tests/support/ARGV[0] with the rest of ARGV ("{port}": a free port) until the
    session ends; yields its http://127.0.0.1:PORT once READY_PATH answers."""
    port = _free_port()
    script, *args = argv
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / script)]
        + [a.replace("{port}", str(port)) for a in args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{endpoint}{ready_path}")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: a server's threads are slow to go
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1: one of this pytest worker's own, or the one given in
    CFW_TEST_MOTO_ENDPOINT (then run with -n 0: parallel workers would share one account,
    and the tibanna tests its account-wide tibanna-master table).

    Ours is tests/support/moto_plus.py: moto with AWS's managed policies loaded and the two
    Step Functions actions the aws provider calls and moto lacks."""
    given = os.environ.get("CFW_TEST_MOTO_ENDPOINT")
    if given:
        _wait_http(f"{given}/moto-api/")
        yield given
        return
    try:
        import moto.server  # noqa: F401
    except ImportError:
        pytest.fail("moto's server is not installed: pip install 'moto[server]'")
    # moto plus the Step Functions actions it lacks (tests/support/moto_plus.py), run by
    # path: tibanna's dependency python-lambda-4dn installs a top-level `tests` package
    # that would shadow `-m tests.support.moto_plus`
    yield from _serve(["moto_plus.py", "-H", "127.0.0.1", "-p", "{port}"], "/moto-api/")


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch) -> dict[str, str]:
    """AWS settings pointing boto3, the aws provider and Snakemake's S3 plugin at moto."""
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_USE_PATH_STYLE": "true",
        "AWS_MAX_ATTEMPTS": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# -- GCS -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A GCS emulator on 127.0.0.1, this pytest worker's own, in memory: gcp-storage-emulator
    with the paging of objects.list that GCS has (tests/support/gcs_plus.py, run by path
    like moto_plus.py). Its URL is what STORAGE_EMULATOR_HOST takes."""
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        pytest.fail("the GCS emulator is not installed: pip install gcp-storage-emulator")
    yield from _serve(
        ["gcs_plus.py", "start", "-H", "127.0.0.1", "--port", "{port}", "--in-memory", "--quiet"],
        "/",
    )


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch) -> dict[str, str]:
    """google-cloud-storage (here and in the `cfw` subprocesses) pointed at the emulator,
    with its anonymous access: no Application Default Credentials are looked for."""
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# -- projects and the CLI ------------------------------------------------------------------
@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cfw(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> Result:
    """Run the cfw CLI in a subprocess, exactly as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CFW_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cfw", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cfw():
    return run_cfw


def copy_workflow(source: Path, dest: Path) -> Path:
    shutil.copytree(
        source, dest, ignore=shutil.ignore_patterns(".snakemake", ".cfw", "results", "__pycache__")
    )
    return dest


@pytest.fixture
def sandbox_base(tmp_path, monkeypatch) -> Path:
    """Job sandboxes of this test go here, away from the shared temp directory."""
    base = tmp_path / "sandboxes"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    return base

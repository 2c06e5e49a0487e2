"""Fixtures of the azure-batch tests: Azurite (blob storage) started by the tests on
127.0.0.1 (with the account key over HTTP; and over HTTPS taking Entra ID tokens too, for
what reaches it with a managed identity), and the fake Batch service over HTTPS.

Azurite is required: when no `azurite-blob` is installed (CFW_AZURITE_BLOB, PATH, or
.cache/npm of the checkout), the tests install npm's `azurite` into .cache/npm themselves;
without npm they fail, they do not skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fake_batch import FakeBatch, FakeBatchServer, make_certificate

REPO = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret)
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


AZURITE_PACKAGE = "azurite@3"
NPM_PREFIX = REPO / ".cache" / "npm"


def azurite_binary() -> str | None:
    given = os.environ.get("CFW_AZURITE_BLOB")
    if given:
        return given
    local = NPM_PREFIX / "node_modules" / ".bin" / "azurite-blob"
    return shutil.which("azurite-blob") or (str(local) if local.exists() else None)


def install_azurite() -> str:
    """npm install azurite into the checkout's .cache/npm (once; concurrent test processes
    wait for each other), and return its azurite-blob."""
    import fcntl

    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("azurite-blob is not installed and npm is not on PATH to install it")
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with open(NPM_PREFIX / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        binary = azurite_binary()
        if binary:
            return binary
        command = [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund"]
        proc = subprocess.run(
            [*command, "--loglevel=error", AZURITE_PACKAGE],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        binary = azurite_binary()
        if proc.returncode != 0 or binary is None:
            pytest.fail(f"npm install {AZURITE_PACKAGE} failed: {proc.stderr[-2000:]}")
        return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_azurite(data: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """azurite-blob on a free port of 127.0.0.1 with its data in DATA, once it listens."""
    binary = azurite_binary() or install_azurite()
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(data),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"azurite-blob did not start on 127.0.0.1:{port}")
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def account(endpoint: str) -> dict[str, str]:
    return {
        "endpoint": endpoint,
        "account": AZURITE_ACCOUNT,
        "key": AZURITE_KEY,
        "connection_string": (
            f"DefaultEndpointsProtocol={endpoint.split(':')[0]};AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
        ),
    }


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[dict[str, str]]:
    proc, port = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield account(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def azurite_oauth(tmp_path_factory, fake_batch_cert) -> Iterator[dict[str, str]]:
    """Azurite over HTTPS with `--oauth basic`: besides the account key it takes Entra ID
    bearer tokens, checking their audience, issuer and times (not their signature). Its
    certificate is the fake Batch's, which the fake_batch fixture makes clients trust."""
    cert, key = fake_batch_cert
    data = tmp_path_factory.mktemp("azurite-oauth")
    proc, port = start_azurite(data, "--oauth", "basic", "--cert", str(cert), "--key", str(key))
    try:
        yield account(f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def fake_batch_cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("fake-batch"))


@pytest.fixture
def fake_batch(fake_batch_cert, monkeypatch) -> Iterator[FakeBatch]:
    """A fresh fake Batch service (pools d4: 4 slots, e16: 16 slots) on https://127.0.0.1."""
    service = FakeBatch(pools={"standard-d4s-v3": 4, "standard-e16s-v3": 16}, page_size=2)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake_batch_cert[0]))
    with FakeBatchServer(service, *fake_batch_cert):
        yield service

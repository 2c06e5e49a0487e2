"""Fixtures of the azure-batch tests: Azurite (blob storage) started by the tests on
127.0.0.1, and the fake Batch service over HTTPS.

Azurite is required: without `azurite-blob` (npm `azurite`; `.ci/run` installs it) the
tests fail, they do not skip.
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


def azurite_binary() -> str | None:
    given = os.environ.get("CFW_AZURITE_BLOB")
    if given:
        return given
    local = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"
    return shutil.which("azurite-blob") or (str(local) if local.exists() else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[dict[str, str]]:
    binary = azurite_binary()
    if binary is None:
        pytest.fail(
            "azurite-blob is not installed: `npm install --prefix .cache/npm azurite` "
            "(or set CFW_AZURITE_BLOB); .ci/run installs it"
        )
    port = _free_port()
    data = tmp_path_factory.mktemp("azurite")
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"azurite-blob did not start on 127.0.0.1:{port}")
            time.sleep(0.2)
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    try:
        yield {
            "endpoint": endpoint,
            "account": AZURITE_ACCOUNT,
            "key": AZURITE_KEY,
            "connection_string": (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
            ),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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

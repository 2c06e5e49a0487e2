"""Two `cfw run`s at once on one shared azure-batch environment, end to end: real Snakemake
with cfw's executor and the real azure-batch client, the fake Batch service whose node
agent runs each task's command on this machine (no container engine here), and Azurite
as the blob storage that sources, inputs, intermediates and logs go through.

What is not real: Terraform cannot apply the azurerm module here, so the environment's
record is written as `cfw up` writes it, with outputs that point at the fake and Azurite;
the node's managed identity is stood in for by Azurite's connection string.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from cfw import __version__
from cfw.backends.registry import dump_config, resolve
from cfw.core.state import PHASE_UP, EnvState, Meta
from support.fake_batch import NodeAgent

pytest_plugins = ["support.azure"]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"
BATCH_KEY = "ZmFrZS1iYXRjaC1rZXktZm9yLWUyZS10ZXN0cw=="
CONFIG = """kind: azure-batch
region: westeurope
subscription_id: 00000000-0000-0000-0000-000000000001
image: snakemake-azure:test
tasks_per_node: 2
output_files_auth: sas
pools:
  - vm_size: Standard_D2s_v3
    max_dedicated_nodes: 2
"""


def fake_up(project: Path, fake_url: str, azurite: dict[str, str]) -> None:
    """Record the environment as `cfw up` would after an apply (see the module docstring)."""
    (project / "environments").mkdir(exist_ok=True)
    (project / "environments" / "azure-batch.yaml").write_text(CONFIG)
    resolved = resolve(project, "azure-batch", environ={})
    state = EnvState(project, "azure-batch")
    created = datetime.now(UTC).isoformat()
    state.save_meta(
        Meta(
            name="azure-batch",
            kind="azure-batch",
            env_id="azure-batch-0a1b2c",
            phase=PHASE_UP,
            created_at=created,
            updated_at=created,
            config=dump_config(resolved.config),
            cfw_version=__version__,
        )
    )
    endpoint = azurite["endpoint"]
    state.save_outputs(
        {
            "batch_account_url": fake_url,
            "batch_account_name": "acct",
            "batch_pool_ids": ["standard-d2s-v3"],
            "storage_account_name": azurite["account"],
            "storage_blob_endpoint": f"{endpoint}/",
            "storage_container_urls": {c: f"{endpoint}/{c}" for c in ("data", "logs")},
            "identity_id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/"
            "cfw-azure-batch/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/nodes",
            "identity_client_id": "00000000-0000-0000-0000-000000000001",
            "resource_group_name": "cfw-azure-batch",
            "subscription_id": "00000000-0000-0000-0000-000000000001",
            "cfw_id": "azure-batch-0a1b2c",
        }
    )


def plain_report(tmp_path: Path) -> str:
    workdir = tmp_path / "plain"
    subprocess.run(["cp", "-r", str(QUICKSTART), str(workdir)], check=True)
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return (workdir / "results" / "report.tsv").read_text()


def test_two_runs_share_the_pool(tmp_path, fake_batch, azurite, fake_batch_cert):
    from azure.storage.blob import BlobServiceClient

    blobs = BlobServiceClient.from_connection_string(azurite["connection_string"])
    for name in ("data", "logs"):
        if not blobs.get_container_client(name).exists():
            blobs.create_container(name)
    fake_batch.pools = {"standard-d2s-v3": 2}
    python_dir = str(Path(sys.executable).parent)
    fake_batch.node_agent = NodeAgent(
        {
            "PATH": f"{python_dir}:/usr/bin:/bin",
            "AZURITE_CONNECTION_STRING": azurite["connection_string"],
            "LANG": "C.UTF-8",
        },
        tmp_path / "nodes",
    )

    env = {
        **os.environ,
        "AZ_BATCH_ACCOUNT_KEY": BATCH_KEY,
        "AZ_BATCH_ACCOUNT_NAME": "acct",
        "REQUESTS_CA_BUNDLE": str(fake_batch_cert[0]),
        "AZURITE_CONNECTION_STRING": azurite["connection_string"],
        "AZURE_STORAGE_CONNECTION_STRING": azurite["connection_string"],
    }
    env.pop("CFW_DEBUG", None)
    runs = {}
    for name in ("wf1", "wf2"):
        project = tmp_path / name
        subprocess.run(["cp", "-r", str(QUICKSTART), str(project)], check=True)
        fake_up(project, fake_batch.base_url, azurite)
        runs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cfw",
                "run",
                "--env",
                "azure-batch",
                "--download",
                "--seconds-between-status-checks",
                "2",
            ],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {name: proc.communicate(timeout=540)[0] for name, proc in runs.items()}
    for name, proc in runs.items():
        assert proc.returncode == 0, outputs[name][-4000:]
        # the storage credentials travel as env settings: said once per run, values never
        assert outputs[name].count("not secret on Azure Batch") == 1, outputs[name][-4000:]
        assert azurite["key"] not in outputs[name]

    expected = plain_report(tmp_path)
    for name in runs:
        assert (tmp_path / name / "results" / "report.tsv").read_text() == expected
    # each run made its own Batch job on the one pool, 9 tasks each, and deleted it at the end
    made = [
        json.loads(b)
        for m, u, b in fake_batch.requests
        if m == "POST" and urlparse(u).path == "/jobs"
    ]
    assert len({j["id"] for j in made}) == 2 and fake_batch.count("POST", "/jobs") == 2
    assert {j["poolInfo"]["poolId"] for j in made} == {"standard-d2s-v3"}
    assert fake_batch.count("POST", "/jobs/{job}/tasks") == 18
    assert fake_batch.count("DELETE", "/jobs/{job}") == 2
    assert fake_batch.jobs == {}
    assert not [u for _, u, _ in fake_batch.requests if "/pools" in u]
    # status: list calls, never one call per task (18 tasks finished)
    lists = [
        u
        for m, u, _ in fake_batch.requests
        if m == "GET"
        and re.fullmatch(r"/jobs/[^/]+/tasks", urlparse(u).path)
        and "skiptoken" not in u
    ]
    task_gets = [
        u
        for m, u, _ in fake_batch.requests
        if m == "GET" and re.fullmatch(r"/jobs/[^/]+/tasks/[^/]+", urlparse(u).path)
    ]
    assert lists and task_gets == []
    # data went through the storage: inputs staged, intermediates there, logs uploaded
    names = {b.name for b in blobs.get_container_client("data").list_blobs()}
    assert any(n.endswith("wf1/data/alpha.fa") for n in names)
    assert any(n.endswith("wf2/results/gc/delta.txt") for n in names)
    logs = {b.name for b in blobs.get_container_client("logs").list_blobs()}
    bodies = [
        json.loads(b)
        for m, u, b in fake_batch.requests
        if m == "POST" and urlparse(u).path.endswith("/tasks")
    ]
    uploaded = {
        f"{t['outputFiles'][0]['destination']['container']['path']}/{name}"
        for t in bodies
        for name in ("stdout.txt", "stderr.txt")
    }
    assert len(uploaded) == 36 and uploaded <= logs
    # the Batch key and the storage key are in no record cfw wrote, nor in any task
    for secret in (BATCH_KEY, azurite["key"]):
        for name in runs:
            for path in (tmp_path / name / ".cfw").rglob("*"):
                if path.is_file():
                    assert secret not in path.read_text(errors="replace"), path
        assert not [b for _, _, b in fake_batch.requests if secret in b]
    assert all("sig=" not in t["commandLine"] for t in bodies)

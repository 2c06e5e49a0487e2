"""The CLI with kind azure-batch: `cfw up` stops with one line (exit 2) before anything is
created when the subscription, location, credentials or a registry password are missing;
`cfw run --explain` (not up) prints each job's Batch task with placeholders and no secret."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from azure.batch import models as bm

REPO = Path(__file__).resolve().parents[2]
SAS = "https://sa.blob.core.windows.net/s/start.sh?sv=2024&sig=STARTTASKSIGNATURE"
SECRETS = {
    "AZ_BATCH_ACCOUNT_KEY": "YmF0Y2gta2V5LXRoYXQtbXVzdC1uZXZlci1zaG93",
    "AZURE_STORAGE_KEY": "c3RvcmFnZS1rZXktdGhhdC1tdXN0LW5ldmVyLXNob3c=",
    "AZURE_CLIENT_SECRET": "client-secret-that-must-never-show",
    "BATCH_NODE_START_TASK_SAS_URL": SAS,
    "BATCH_CONTAINER_REGISTRY_PASS": "registry-password-that-must-never-show",
}

SUB = "00000000-0000-0000-0000-00000000aaaa"  # a subscription id of the right form


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any Azure setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "ARM_", "AZ_BATCH_", "BATCH_"))
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({}, "no Azure subscription"),
        ({"AZURE_SUBSCRIPTION_ID": SUB}, "no Azure location"),
        (
            {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_LOCATION": "westeurope"},
            "no Azure credentials",
        ),
        (
            {
                "AZURE_SUBSCRIPTION_ID": SUB,
                "AZURE_LOCATION": "westeurope",
                "AZURE_CLIENT_ID": "c",
                "AZURE_CLIENT_SECRET": "s",
            },
            "needs a job image with Snakemake and snakemake-storage",
        ),
        (
            {
                "AZURE_SUBSCRIPTION_ID": SUB,
                "AZURE_LOCATION": "westeurope",
                "AZURE_CLIENT_ID": "c",
                "AZURE_CLIENT_SECRET": "s",
                "BATCH_CONTAINER_REGISTRY": "r.azurecr.io",
                "BATCH_POOL_VM_CONTAINER_IMAGE": "r.azurecr.io/cfw-job:0.1.0",
                "BATCH_CONTAINER_REGISTRY_USER": "puller",
            },
            "BATCH_CONTAINER_REGISTRY_PASS is empty",
        ),
        (
            {
                "AZURE_SUBSCRIPTION_ID": SUB,
                "AZURE_LOCATION": "westeurope",
                "AZURE_CLIENT_ID": "c",
                "AZURE_CLIENT_SECRET": "s",
                "BATCH_CONTAINER_REGISTRY": "r.azurecr.io",
                "BATCH_POOL_VM_CONTAINER_IMAGE": "r.azurecr.io/cfw-job:0.1.0",
            },
            "can pull only with AcrPull",
        ),
    ],
)
def test_up_stops_before_creating_anything(cfw, tmp_path, extra, fragment):
    if shutil.which("az"):
        pytest.fail("an `az` CLI on PATH would count as credentials; this test needs it absent")
    result = cfw(["up", "azure-batch", "--yes"], cwd=tmp_path, env=clean_env(**extra))
    assert result.code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".cfw" / "azure-batch").exists()
    assert not (tmp_path / "environments").exists()


def test_up_flags_fill_the_config(cfw, tmp_path):
    """--region and --set subscription_id satisfy the checks that AZURE_* would; the next
    missing piece (the job image) is what stops it."""
    result = cfw(
        [
            "up",
            "azure-batch",
            "--yes",
            "--region",
            "northeurope",
            "--set",
            "subscription_id=00000000-0000-0000-0000-00000000aaaa",
        ],
        cwd=tmp_path,
        env=clean_env(AZURE_CLIENT_ID="c", AZURE_CLIENT_SECRET="s"),
    )
    assert result.code == 2 and "needs a job image" in result.stderr, result.output
    assert not (tmp_path / "environments").exists()  # nothing written when preflight stops


SNAKEFILE = """
rule all:
    input: expand("results/{s}.txt", s=["a", "b"]), "results/big.txt"

rule small:
    output: "results/{s}.txt"
    resources: mem_mb=2000, runtime=30
    shell: "echo {wildcards.s} > {output}"

rule big:
    output: "results/big.txt"
    threads: 12
    resources: mem_mb=64000
    shell: "echo big > {output}"
"""


def test_explain_prints_tasks_with_placeholders_and_no_secret(cfw, tmp_path):
    project = tmp_path / "wf"
    (project / "environments").mkdir(parents=True)
    (project / "Snakefile").write_text(SNAKEFILE)
    config = (REPO / "environments" / "azure-batch.yaml").read_text()
    config += "resource_files:\n  - source: az://data/ref/genome.fa\n    file_path: genome.fa\n"
    (project / "environments" / "azure-batch.yaml").write_text(
        config.replace("output_files_auth: identity", "output_files_auth: sas")
    )
    result = cfw(
        ["run", "--explain", "--env", "azure-batch"], cwd=project, env=clean_env(**SECRETS)
    )
    assert result.code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["rule"] for r in records) == ["big", "small", "small"]
    assert {r["kind"] for r in records} == {"azure-batch"}
    for record in records:
        submission = record["submission"]
        task = submission["task"]
        bm.BatchTaskCreateOptions(task)  # the SDK's model reads it
        assert submission["account_url"] == "https://cfwbaazurebatchadhoc.<region>.batch.azure.com"
        pool = "standard-e16s-v3" if record["rule"] == "big" else "standard-d4s-v3"
        assert submission["job_id"] == f"cfw-explain-{pool}"
        assert task["requiredSlots"] == (12 if record["rule"] == "big" else 1)
        assert task["commandLine"].startswith("/bin/bash -c ")
        assert "--deploy-sources" in task["commandLine"]
        assert "pip install" not in task["commandLine"]  # its own image has the plugin
        dest = task["outputFiles"][0]["destination"]["container"]
        assert dest["containerUrl"].endswith("/logs?<sas:write>")
        assert task["resourceFiles"][0]["httpUrl"].endswith("/data/ref/genome.fa?<sas:read>")
        env = {e["name"]: e["value"] for e in task["environmentSettings"]}
        assert env["AZURE_CLIENT_ID"] == "<identity-client-id>"
    everything = result.stdout + result.stderr
    for secret in [*SECRETS.values(), "STARTTASKSIGNATURE", "sig="]:
        assert secret not in everything


def test_batch_account_url_gives_the_account_and_its_region(cfw, tmp_path):
    from cfw.backends.azure_batch.kind import KIND
    from cfw.core.errors import UserError

    url = "https://mybatch.northeurope.batch.azure.com"
    assert KIND.defaults({"AZ_BATCH_ACCOUNT_URL": url}) == {
        "batch_account_name": "mybatch",
        "region": "northeurope",
    }
    # AZURE_LOCATION and AZ_BATCH_ACCOUNT_NAME (the same account) still count
    assert KIND.defaults({"AZ_BATCH_ACCOUNT_URL": url + "/", "AZURE_LOCATION": "westeurope"}) == {
        "batch_account_name": "mybatch",
        "region": "westeurope",
    }
    with pytest.raises(UserError, match="names Batch account 'mybatch' but"):
        KIND.defaults({"AZ_BATCH_ACCOUNT_URL": url, "AZ_BATCH_ACCOUNT_NAME": "other"})
    with pytest.raises(UserError, match="is not a Batch account URL"):
        KIND.defaults({"AZ_BATCH_ACCOUNT_URL": "mybatch.northeurope"})
    # through the CLI: the URL satisfies the location check (the image is what stops it)
    result = cfw(
        ["up", "azure-batch", "--yes"],
        cwd=tmp_path,
        env=clean_env(
            AZURE_SUBSCRIPTION_ID=SUB,
            AZ_BATCH_ACCOUNT_URL=url,
            AZURE_CLIENT_ID="c",
            AZURE_CLIENT_SECRET="s",
        ),
    )
    assert result.code == 2 and "needs a job image" in result.stderr, result.output


ACCOUNT = {
    "id": "00000000-0000-0000-0000-000000000001",
    "name": "sub",
    "state": "Enabled",
    "tenantId": "00000000-0000-0000-0000-000000000002",
    "user": {"name": "someone@example.org", "type": "user"},
}


def fake_az(tmp_path: Path, script: str) -> dict[str, str]:
    """An environment whose PATH starts with a fake `az` that logs its arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    az = bindir / "az"
    az.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/az.log"\n{script}\n')
    az.chmod(0o755)
    return clean_env(
        AZURE_SUBSCRIPTION_ID=SUB,
        AZURE_LOCATION="westeurope",
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
    )


def test_az_that_is_not_logged_in_is_one_line_naming_the_fix(cfw, tmp_path):
    env = fake_az(tmp_path, "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1")
    result = cfw(["up", "azure-batch", "--yes"], cwd=tmp_path, env=env)
    assert result.code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Azure CLI is not logged in" in errors[0], result.output
    assert "Please run 'az login'" in errors[0]
    assert "az login" in result.stderr and "ARM_CLIENT_SECRET" in result.stderr
    assert (tmp_path / "az.log").read_text() == "account show --output json\n"
    assert not (tmp_path / ".cfw" / "azure-batch").exists()


def test_az_that_is_logged_in_counts_as_credentials(cfw, tmp_path):
    env = fake_az(tmp_path, f"echo '{json.dumps(ACCOUNT)}'")
    result = cfw(["up", "azure-batch", "--yes"], cwd=tmp_path, env=env)
    assert result.code == 2 and "needs a job image" in result.stderr, result.output
    assert (tmp_path / "az.log").read_text() == "account show --output json\n"


def test_a_service_principal_does_not_ask_az(cfw, tmp_path):
    env = fake_az(tmp_path, "exit 1")
    env.update(AZURE_CLIENT_ID="c", AZURE_CLIENT_SECRET="s")
    result = cfw(["up", "azure-batch", "--yes"], cwd=tmp_path, env=env)
    assert result.code == 2 and "needs a job image" in result.stderr, result.output
    assert not (tmp_path / "az.log").exists()

"""`cfw up google-batch` stops with one line (exit 2) before creating anything when the
project or the credentials are missing; `cfw run --explain --env google-batch` (not up)
prints every job as a Batch CreateJobRequest in its JSON mapping, with placeholders and
without secret values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.cloud import batch_v1

from cfw.core.state import EnvState

SNAKEFILE = """
rule all:
    input: "out/p100.txt", "out/l4.txt", "out/spot.txt", "out/plain.txt"

rule p100:
    output: "out/p100.txt"
    resources: gpu_model="nvidia-tesla-p100"
    shell: "nvidia-smi > {output}"

rule l4:
    output: "out/l4.txt"
    threads: 4
    resources: nvidia_gpu=2, gpu_model="nvidia-l4", mem_mb=10000, disk_mb=50000, runtime=90
    shell: "nvidia-smi > {output}"

rule spot:
    output: "out/spot.txt"
    threads: 2
    resources: machine_type="n2", mem_mb=20000
    shell: "echo $MY_TOKEN | wc -c > {output}"

rule plain:
    output: "out/plain.txt"
    shell: "echo plain > {output}"
"""


@pytest.fixture
def no_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment with no Application Default Credentials anywhere."""
    home = tmp_path / "home"
    (home / "gcloud").mkdir(parents=True)
    return {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),  # gcloud's ADC file would be here: empty
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "NO_GCE_CHECK": "true",  # google-auth: this is not a GCE VM, skip the metadata server
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GOOGLE_CLOUD_PROJECT": "",
        "CLOUDSDK_CORE_PROJECT": "",
        "TF_LOG": "",
    }


def project_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def assert_nothing_created(work: Path) -> None:
    assert sorted(p.name for p in work.iterdir()) == [], "nothing may be created"


def test_up_without_credentials_stops_before_anything(cfw, tmp_path, no_credentials):
    work = project_dir(tmp_path)
    result = cfw(
        ["up", "google-batch", "--yes"],
        work,
        {**no_credentials, "GOOGLE_CLOUD_PROJECT": "example-project"},
    )
    assert result.code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no Google Cloud credentials found (Application Default Credentials)" in lines[0]
    assert "gcloud auth application-default login" in lines[0]
    assert "Traceback" not in result.output
    assert_nothing_created(work)  # no .cfw/, no environments/google-batch.yaml


def test_up_without_a_project_names_the_three_ways(cfw, tmp_path, no_credentials):
    work = project_dir(tmp_path)
    result = cfw(["up", "google-batch", "--yes"], work, no_credentials)
    assert result.code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "no Google Cloud project" in line
    for way in ("project:", "--project", "GOOGLE_CLOUD_PROJECT"):
        assert way in line
    assert_nothing_created(work)


def test_up_with_a_missing_key_file(cfw, tmp_path, no_credentials):
    work = project_dir(tmp_path)
    missing = tmp_path / "nope.json"
    result = cfw(
        ["up", "google-batch", "--yes", "--project", "example-project"],
        work,
        {**no_credentials, "GOOGLE_APPLICATION_CREDENTIALS": str(missing)},
    )
    assert result.code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"GOOGLE_APPLICATION_CREDENTIALS={missing}" in line
    assert_nothing_created(work)


def test_explain_prints_batch_jobs_without_secrets(cfw, tmp_path, no_credentials):
    work = project_dir(tmp_path)
    (work / "Snakefile").write_text(SNAKEFILE)
    (work / "environments").mkdir()
    (work / "environments" / "google-batch.yaml").write_text(
        "kind: google-batch\nproject: example-project\nregion: europe-west4\n"
    )
    secret = "s3cr3t-Value-4b1d"
    # --cores: Snakemake's dry-run (under --explain) caps threads at its cores, 1 by default
    result = cfw(
        [
            "run",
            "--explain",
            "--env",
            "google-batch",
            "--envvars",
            "MY_TOKEN",
            "--preemptible-rules",
            "spot",
            "--cores",
            "64",
        ],
        work,
        {**no_credentials, "MY_TOKEN": secret},
    )
    assert result.code == 0, result.output
    assert secret not in result.output
    records = {r["rule"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"p100", "l4", "spot", "plain"}
    # cfw's explain redacts the value of every variable jobs receive, wherever it appears;
    # the GCS storage plugin's project setting is one (SNAKEMAKE_STORAGE_GCS_PROJECT), so
    # the project id shows as <redacted> too
    project = "<redacted>"
    for rule, record in records.items():
        assert record["kind"] == "google-batch" and record["env"] == "google-batch"
        assert set(record["env_vars"]) >= {"MY_TOKEN", "SNAKEMAKE_STORAGE_GCS_PROJECT"}
        request = batch_v1.CreateJobRequest.from_json(json.dumps(record["submission"]))
        job = request.job
        assert request.parent == f"projects/{project}/locations/europe-west4"
        task = job.task_groups[0].task_spec
        runnable = task.runnables[0]
        shell, command = runnable.container.commands
        assert shell == "-c" and "--target-jobs" in command
        assert runnable.environment.secret_variables["MY_TOKEN"] == (
            f"projects/{project}/secrets/ENV_ID-explain-MY_TOKEN/versions/latest"
        )
        assert not runnable.environment.variables.get("MY_TOKEN")
        alloc = job.allocation_policy
        assert alloc.service_account.email == f"ENV_ID@{project}.iam.gserviceaccount.com"
        assert job.labels["cfw-id"] == "ENV_ID" and job.labels["cfw-rule"] == rule
        assert list(alloc.location.allowed_locations) == ["regions/europe-west4"]
        policy = alloc.instances[0].policy
        spot = batch_v1.AllocationPolicy.ProvisioningModel.SPOT
        assert (policy.provisioning_model == spot) == (rule == "spot")
    p100 = records["p100"]["submission"]["job"]["allocationPolicy"]["instances"][0]
    assert p100["policy"]["accelerators"] == [{"type": "nvidia-tesla-p100", "count": "1"}]
    assert p100["installGpuDrivers"] is True and p100["policy"]["machineType"].startswith("n1-")
    l4 = records["l4"]["submission"]["job"]
    assert l4["allocationPolicy"]["instances"][0]["policy"]["machineType"] == "g2-standard-24"
    assert l4["taskGroups"][0]["taskSpec"]["maxRunDuration"] == "5400s"
    assert l4["taskGroups"][0]["taskSpec"]["computeResource"] == {
        "cpuMilli": "4000",
        "memoryMib": "10000",
        "bootDiskMib": "50000",
    }
    spot = records["spot"]["submission"]["job"]
    assert spot["allocationPolicy"]["instances"][0]["policy"]["machineType"] == "n2-highmem-4"
    assert spot["taskGroups"][0]["taskSpec"]["lifecyclePolicies"][0]["actionCondition"] == {
        "exitCodes": [50001]
    }
    # explain brings nothing up (no environment record, no Terraform state)
    assert not EnvState(work, "google-batch").exists
    assert not list(work.rglob("*.tfstate")) and not list(work.rglob("main.tf"))


def test_preflight_accepts_a_key_file_and_takes_the_project_from_the_environment(
    tmp_path, no_credentials, monkeypatch
):
    """With credentials present nothing is refused (and no network call is made)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from cfw.backends.registry import get_kind, resolve

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "example-project",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "ci@example-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    environ = {
        **no_credentials,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "GOOGLE_CLOUD_PROJECT": "example-project",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "gb.yaml").write_text("kind: google-batch\n")
    config = resolve(tmp_path, "gb", environ=environ).config
    assert config.project is None  # not in the file
    get_kind("google-batch").preflight(config, environ)
    assert config.project == "example-project"

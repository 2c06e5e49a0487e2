"""`cfw run --explain --env gke` before `up`: one JSON line per DAG job whose submission is a
valid batch/v1 Job (placeholders where `up` has not run), secrets only by reference."""

from __future__ import annotations

import json
from importlib import metadata

import kubernetes_validate

SNAKEFILE = """
rule all:
    input: expand("results/{s}.txt", s=["a", "b"])

rule simulate:
    output: "raw/{s}.txt"
    resources: mem_mb=3000, runtime=20, machine_type="e2-standard", preemptible=True
    shell: "echo {wildcards.s} > {output}"

rule summarise:
    input: "raw/{s}.txt"
    output: "results/{s}.txt"
    threads: 2
    resources: mem_mb=6000, disk_mb=20000
    shell: "wc -c {input} > {output}"
"""
SECRET = "s3cr3t-token-for-explain-9f2e"


def test_explain_prints_valid_jobs_and_no_secret(cfw, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    result = cfw(
        ["run", "--explain", "--env", "gke", "--envvars", "RUN_TOKEN"],
        cwd=tmp_path,
        env={"GOOGLE_CLOUD_PROJECT": "my-project", "RUN_TOKEN": SECRET},
    )
    assert result.code == 0, result.output
    assert SECRET not in result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((r["rule"], r["wildcards"]["s"]) for r in records) == [
        ("simulate", "a"),
        ("simulate", "b"),
        ("summarise", "a"),
        ("summarise", "b"),
    ]
    for record in records:
        assert record["kind"] == "gke" and record["env"] == "gke"
        job = record["submission"]["job"]
        for version in ("1.30", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(job, version, strict=True)
        pod = job["spec"]["template"]["spec"]
        env = pod["containers"][0]["env"]
        assert all(set(e) == {"name", "valueFrom"} for e in env)
        assert "RUN_TOKEN" in {e["name"] for e in env}
        assert record["submission"]["secret"]["keys"] == sorted(e["name"] for e in env)
        command = pod["containers"][0]["command"][2]
        assert "gcs://<bucket-known-after-up>/cfw" in command
        # Snakemake's stock image has no storage plugin: the job installs the gcs one, pinned
        pin = "snakemake-storage-plugin-gcs==" + metadata.version("snakemake-storage-plugin-gcs")
        assert f"--target .snakemake/pip-deployments {pin} &&" in command
        assert command.index(pin) < command.index("python -m snakemake")
        if record["rule"] == "simulate":
            assert pod["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
            assert job["spec"]["activeDeadlineSeconds"] == 1200
        else:
            assert pod["containers"][0]["resources"]["requests"] == {
                "cpu": "2",
                "memory": "6000Mi",
                "ephemeral-storage": "20000Mi",
            }
    assert not (tmp_path / ".cfw" / "gke" / "terraform.tfstate").exists()

"""`cfw run --explain --env tibanna` before `up`: one valid Tibanna input per job, with
placeholders for what only `up` knows, and no secret anywhere in the output."""

from __future__ import annotations

import json

from cfw.backends.tibanna.validate import validate_input

SNAKEFILE = """
rule all:
    input: "results/summary.txt"

rule count:
    output: "results/{sample}.count"
    threads: 2
    resources: mem_mb=3000, machine_type="c5"
    shell: "echo {wildcards.sample} | wc -c > {output}"

rule summary:
    input: expand("results/{sample}.count", sample=["a", "b"])
    output: "results/summary.txt"
    resources: disk_mb=40000, runtime=20, preemptible=True
    shell: "cat {input} > {output}"
"""

SECRET_KEY = "tibanna-explain-SECRET-value-123456"


def test_explain_prints_valid_tibanna_input_with_placeholders(cfw, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAEXPLAINTEST0001",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "eu-west-2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }  # never called
    # --cores: a dry-run caps threads at the local cores (a real cloud run does not)
    result = cfw(
        ["run", "--explain", "--env", "tibanna", "--cores", "8"], tmp_path, env=env, timeout=300
    )
    assert result.code == 0, result.output
    assert SECRET_KEY not in result.output and "AKIAEXPLAINTEST0001" not in result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["rule"] for r in records) == ["count", "count", "summary"]
    for record in records:
        assert record["kind"] == "tibanna"
        submission = record["submission"]
        accepted = validate_input(submission, region="eu-west-2")
        assert accepted["jobid"] == submission["jobid"]
        assert submission["config"]["log_bucket"] == "cfw-<env-id>-logs"
        assert submission["args"]["output_S3_bucket"] == "cfw-<env-id>-data"
        assert "<account>" in submission["_tibanna"]["exec_arn"]
        assert "s3://cfw-<env-id>-data/cfw" in submission["args"]["command"]
        assert not (tmp_path / ".cfw" / "tibanna").exists() or not any(
            (tmp_path / ".cfw" / "tibanna").glob("*.tfstate")
        )
    count = next(r for r in records if r["rule"] == "count")["submission"]["config"]
    assert (count["cpu"], count["mem"], count["instance_type"]) == (2, 3.0, "c5.large")
    summary = next(r for r in records if r["rule"] == "summary")["submission"]
    assert summary["config"]["ebs_size"] == 40 and summary["config"]["spot_instance"] is True
    assert summary["args"]["command"].startswith("timeout --signal=TERM --kill-after=60 1200 ")
    assert (
        "--target-jobs" in summary["args"]["command"] and "summary:" in summary["args"]["command"]
    )

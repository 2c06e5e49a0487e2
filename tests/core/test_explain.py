"""`cfw run --explain` with a job the environment cannot take: the other jobs are still
explained, then one line names the job, the problem and the fix (exit 2, no traceback)."""

from __future__ import annotations

import json

SNAKEFILE = """
rule all:
    input: "big.txt", "small.txt"

rule small:
    output: "small.txt"
    shell: "echo small > {output}"

rule big:
    output: "big.txt"
    threads: 500
    shell: "echo big > {output}"
"""


def test_explain_names_the_job_no_pool_fits(cfw, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    result = cfw(
        ["run", "--explain", "--env", "gke", "--cores", "1000"],
        cwd=tmp_path,
        env={"GOOGLE_CLOUD_PROJECT": "my-project"},
    )
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    [small] = [json.loads(line) for line in result.stdout.splitlines()]
    assert small["rule"] == "small" and "job" in small["submission"]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: 1 job(s) cannot be submitted to gke; rule big (job ")
    assert "500" in error

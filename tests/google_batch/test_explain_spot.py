"""`cfw run --explain` shows each preemptible job's spot plan: how many spot attempts, then
on demand or fail (Snakemake's --preemptible-retries, else spot.retries); Batch's own
maxRetryCount carries the retries. On-demand jobs carry no plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SNAKEFILE = """
rule all:
    input: "b.txt"

rule spot:
    output: "a.txt"
    resources: preemptible=True
    shell: "echo a > {output}"

rule steady:
    input: "a.txt"
    output: "b.txt"
    shell: "cp {input} {output}"
"""


@pytest.mark.parametrize(
    ("flag", "spot", "retries", "then"),
    [
        ("0", {}, 0, "on-demand"),
        ("1", {"fallback": "fail"}, 1, "fail"),
        ("3", {"retries": 5}, 3, "on-demand"),  # the flag wins over the config
        (None, {"retries": 2, "fallback": "fail"}, 2, "fail"),
    ],
)
def test_explain_shows_the_spot_plan(cfw, tmp_path: Path, flag, spot, retries, then):
    work = tmp_path / "work"
    (work / "environments").mkdir(parents=True)
    (work / "Snakefile").write_text(SNAKEFILE)
    config = "kind: google-batch\nproject: example-project\nregion: europe-west4\n"
    if spot:
        config += f"spot: {json.dumps(spot)}\n"
    (work / "environments" / "google-batch.yaml").write_text(config)
    args = ["run", "--explain", "--env", "google-batch"]
    args += ["--preemptible-retries", flag] if flag is not None else []
    result = cfw(args, work, {"GOOGLE_CLOUD_PROJECT": "", "NO_GCE_CHECK": "true"})
    assert result.code == 0, result.output
    records = {r["rule"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["spot"]["preemption"] == {
        "spot_attempts": retries + 1,
        "spot_retries": retries,
        "then": then,
    }
    assert "preemption" not in records["steady"]  # on demand: nothing to plan
    task = records["spot"]["submission"]["job"]["taskGroups"][0]["taskSpec"]
    assert task.get("maxRetryCount", 0) == retries  # Batch retries spot itself, that often
    assert (
        "maxRetryCount" not in records["steady"]["submission"]["job"]["taskGroups"][0]["taskSpec"]
    )

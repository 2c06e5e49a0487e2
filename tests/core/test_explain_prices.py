"""`cfw run --explain` puts a dated price on every job of a cloud kind (its share of the
machine it gets), says "no price for X in Y" in the job's line where the tables have none
(and the job still explains), and prices local jobs only with a price override."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cfw.executor.override import OVERRIDE_VAR
from conftest import run_cfw

EXAMPLES = Path(__file__).resolve().parents[2] / "environments"
PRICE_KEYS = {"usd_per_hour", "node_usd_per_hour", "machine", "capacity", "as_of"}
SNAKEFILE = """
rule all:
    input: "b.txt", "c.txt"

rule a:
    output: "a.txt"
    threads: 2
    resources: mem_mb=4000
    shell: "echo a > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    resources: preemptible=True
    shell: "cat {input} > {output}"

rule c:
    output: "c.txt"
    threads: 4
    resources: mem_mb=12000
    shell: "echo c > {output}"
"""
SPOT_IN_EXAMPLE = {"gke", "tibanna", "google-batch"}  # tes and azure-batch: on demand


def project(tmp_path: Path, *configs: str) -> Path:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "environments").mkdir()
    for kind in configs:
        shutil.copy(EXAMPLES / f"{kind}.yaml", tmp_path / "environments" / f"{kind}.yaml")
    return tmp_path


def explain(cwd: Path, env_name: str, env: dict | None = None) -> tuple[int, list[dict], str]:
    result = run_cfw(["run", "--explain", "--env", env_name, "--cores", "8"], cwd, env=env)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return result.code, records, result.output


@pytest.mark.parametrize("kind", ["gke", "tibanna", "tes", "azure-batch", "google-batch"])
def test_every_cloud_job_carries_a_dated_price(tmp_path: Path, kind: str):
    code, records, output = explain(project(tmp_path, kind), kind)
    assert code == 0, output
    assert sorted(r["rule"] for r in records) == ["a", "b", "c"]
    for record in records:
        price = record["price"]
        assert set(price) == PRICE_KEYS, price
        assert price["as_of"] == "2024-06-01" and price["machine"]
        assert 0 < price["usd_per_hour"] <= price["node_usd_per_hour"]
    by_rule = {r["rule"]: r["price"] for r in records}
    assert by_rule["a"]["capacity"] == "on-demand"
    assert by_rule["b"]["capacity"] == ("spot" if kind in SPOT_IN_EXAMPLE else "on-demand")
    # 4 threads and 12 GB cost more than 1 thread
    assert by_rule["c"]["usd_per_hour"] > by_rule["b"]["usd_per_hour"]


def test_a_region_without_prices_is_said_in_the_jobs_line_and_the_job_still_explains(
    tmp_path: Path,
):
    cwd = project(tmp_path, "tibanna")
    config = cwd / "environments" / "tibanna.yaml"
    config.write_text(config.read_text().replace("region: us-east-1", "region: eu-west-2"))
    code, records, output = explain(cwd, "tibanna")
    assert code == 0, output
    assert len(records) == 3 and all("submission" in r for r in records)
    for record in records:
        price = record["price"]
        assert price["usd_per_hour"] is None and price["node_usd_per_hour"] is None
        assert price["problem"].startswith(f"no price for {price['machine']}")
        assert " in eu-west-2 (prices as of 2024-06-01)" in price["problem"]


def test_local_jobs_have_a_price_only_with_an_override(tmp_path: Path):
    cwd = project(tmp_path)
    code, records, output = explain(cwd, "local")
    assert code == 0, output
    assert records and all("price" not in r for r in records)
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"as_of": "2025-01-01", "usd_per_hour": 2.0}))
    code, records, output = explain(cwd, "local", env={OVERRIDE_VAR: str(table)})
    assert code == 0, output
    assert {r["price"]["usd_per_hour"] for r in records} == {2.0}
    assert {r["price"]["as_of"] for r in records} == {"2025-01-01"}


def test_a_cluster_cfw_did_not_create_has_no_price_and_says_so(tmp_path: Path):
    credentials = {"AWS_ACCESS_KEY_ID": "AKIAEXPLAINPRICES001", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    cwd = project(tmp_path, "kubernetes")
    code, records, output = explain(cwd, "kubernetes", env=credentials)
    assert code == 0, output
    assert sorted(r["rule"] for r in records) == ["a", "b", "c"]
    for record in records:
        assert record["price"]["usd_per_hour"] is None
        assert "in a cluster cfw did not create" in record["price"]["problem"]

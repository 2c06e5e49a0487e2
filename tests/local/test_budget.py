"""A run's cost and its budget, end to end on local with a fake price table (local has no
price of its own: CFW_PRICE_OVERRIDE gives it one): every run ends with its estimated cost,
in its records and `cfw status --json` too; past the budget no new job is submitted, the
running job finishes (or is cancelled), and cfw exits 1 with one line saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfw.core.prices import format_usd
from cfw.executor.override import OVERRIDE_VAR
from conftest import run_cfw

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# a chain: b and c become ready only when a has finished
SNAKEFILE = """
rule all:
    input: "c.txt"

rule a:
    output: "a.txt"
    shell: "sleep {config[sleep]}; echo a > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"

rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}"
"""
# rule a costs $10 a second: its running estimate passes $1 a tenth of a second after a
# poll sees it running, however loaded the machine (b and c are cheap)
PRICES = {
    "as_of": "2025-01-01",
    "usd_per_hour": 36.0,
    "rules": {"a": {"usd_per_hour": 36000.0}},
}


def workflow(tmp_path: Path, config: str = "kind: local\n") -> tuple[Path, dict[str, str]]:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "local.yaml").write_text(config)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    return tmp_path, {OVERRIDE_VAR: str(prices)}


def run_dir(cwd: Path) -> Path:
    [found] = (cwd / ".cfw" / "local" / "runs").iterdir()
    return found


def events(cwd: Path) -> list[dict]:
    text = (run_dir(cwd) / "jobs.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def submitted_rules(cwd: Path) -> list[str]:
    return [e["rule"] for e in events(cwd) if e["event"] == "submitted"]


def error_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_run_within_budget_ends_with_its_estimated_cost(tmp_path: Path, sandbox_base: Path):
    cwd, env = workflow(tmp_path)
    result = run_cfw(["run", "--budget", "1000", "--config", "sleep=0"], cwd, env=env)
    assert result.code == 0, result.output
    assert (cwd / "c.txt").exists() and submitted_rules(cwd) == ["a", "b", "c"]
    run = json.loads((run_dir(cwd) / "run.json").read_text())
    cost = run["cost"]
    assert cost["estimate"] is True and cost["as_of"] == "2025-01-01"
    assert cost["total_usd"] == pytest.approx(cost["jobs_usd"] + cost["fixed_usd"])
    assert cost["budget"]["passed"] is False and run["outcome"] == "success"
    assert {r["rule"] for r in cost["top_rules"]} <= {"a", "b", "c"}
    [said] = [line for line in result.stderr.splitlines() if "cost an estimated" in line]
    total = format_usd(cost["total_usd"])
    assert said.startswith(f"cfw: run {run['run_id']} cost an estimated {total}: jobs $")
    assert said.endswith("(prices as of 2025-01-01; an estimate, not a bill)")
    assert "most expensive rules (estimates): a $" in result.stderr
    # every finished job's record says what it cost
    finished = [e for e in events(cwd) if e["event"] == "succeeded"]
    assert len(finished) == 3 and all("usd" in e and "t" in e for e in finished)


def test_past_the_budget_no_job_is_submitted_and_the_running_one_finishes(
    tmp_path: Path, sandbox_base: Path
):
    cwd, env = workflow(tmp_path)
    result = run_cfw(["run", "--budget", "1", "--config", "sleep=3"], cwd, env=env)
    assert result.code == 1, result.output
    assert submitted_rules(cwd) == ["a"]  # b and c were never submitted
    assert (cwd / "a.txt").read_text() == "a\n"  # the running job finished
    assert not (cwd / "b.txt").exists() and not (cwd / "c.txt").exists()
    run = json.loads((run_dir(cwd) / "run.json").read_text())
    assert run["outcome"] == "budget"
    budget = run["cost"]["budget"]
    assert budget["passed"] and budget["passed_at_usd"] > 1 and budget["not_submitted"] == 1
    line = error_line(result.stderr)
    jobs_usd = run["cost"]["jobs_usd"]
    assert line.startswith(
        f"error: the budget of $1.00 stopped run {run['run_id']}: its jobs cost an estimated "
        f"{format_usd(jobs_usd)} ("
    )
    assert line.endswith("; 1 job(s) not submitted")
    assert "passed its budget of $1.00: no new job is submitted" in result.stderr
    assert "Traceback" not in result.output


def test_with_budget_action_cancel_the_running_job_is_cancelled(tmp_path: Path, sandbox_base: Path):
    cwd, env = workflow(tmp_path, "kind: local\nbudget_usd: 1\nbudget_action: cancel\n")
    result = run_cfw(["run", "--config", "sleep=60"], cwd, env=env, timeout=300)
    assert result.code == 1, result.output
    assert submitted_rules(cwd) == ["a"]
    assert [e["event"] for e in events(cwd) if e["event"] in ("cancelled", "succeeded")] == [
        "cancelled"
    ]
    assert not (cwd / "a.txt").exists()
    line = error_line(result.stderr)
    assert line.startswith("error: the budget of $1.00 stopped run ")
    assert line.endswith("; 1 cancelled")


def test_status_shows_the_cost_so_far(tmp_path: Path, sandbox_base: Path):
    cwd, env = workflow(tmp_path)
    assert run_cfw(["up", "local", "--yes"], cwd).code == 0
    try:
        result = run_cfw(["run", "--config", "sleep=0"], cwd, env=env)
        assert result.code == 0, result.output
        status = run_cfw(["status", "--json"], cwd)
        [env_status] = json.loads(status.stdout)
        cost = env_status["cost"]
        [run] = cost["runs"]
        assert cost["estimate"] is True and cost["fixed_usd_per_hour"] == 0.0
        assert cost["runs_usd"] == pytest.approx(run["cost"]["jobs_usd"])
        assert cost["runs_usd"] > 0
        assert cost["total_usd"] == pytest.approx(cost["runs_usd"])
        table = run_cfw(["status"], cwd)
        assert format_usd(cost["total_usd"]) in table.stdout and "COST*" in table.stdout
        assert "an estimate from list prices (not a bill)" in table.stderr
    finally:
        run_cfw(["down", "local", "--yes"], cwd)


@pytest.mark.parametrize("budget", ["0", "-5", "nan"])
def test_a_budget_must_be_some_dollars(tmp_path: Path, budget: str):
    cwd, env = workflow(tmp_path)
    result = run_cfw(["run", "--budget", budget], cwd, env=env)
    assert result.code == 2, result.output
    assert "a budget is an amount of US dollars above 0" in error_line(result.stderr)
    assert not (cwd / ".cfw" / "local" / "runs").exists()

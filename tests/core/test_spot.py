"""The `spot:` settings every environment has, and the policy the executor takes from them
and from Snakemake's --preemptible-retries (cfw/executor/retry.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cfw.backends.base import JobState, JobStatus
from cfw.backends.registry import get_kind, resolve
from cfw.core.errors import UserError
from cfw.executor.retry import SpotPolicy, SpotRetries
from support.builders import context, job_spec


def config_of(tmp_path: Path, text: str):
    (tmp_path / "environments").mkdir(exist_ok=True)
    (tmp_path / "environments" / "t.yaml").write_text(text)
    return resolve(tmp_path, "t", environ={}).config


def test_spot_defaults(tmp_path):
    config = config_of(tmp_path, "kind: google-batch\nproject: my-project-1\n")
    assert (config.spot.retries, config.spot.fallback) == (3, "on-demand")
    assert config.pending_timeout == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("spot: {retries: -1}", ["field 'spot.retries'", "-1", "greater than or equal to 0"]),
        ("spot: {fallback: cheap}", ["field 'spot.fallback'", "'cheap'", "'on-demand'", "'fail'"]),
        ("spot: {retry: 2}", ["unknown field 'spot.retry'", "fallback, retries"]),
        ("pending_timeout: soon", ["field 'pending_timeout'", "such as 30m"]),
    ],
)
def test_a_spot_mistake_is_one_line_naming_the_field(tmp_path, text, fragments):
    with pytest.raises(UserError) as caught:
        config_of(tmp_path, f"kind: google-batch\nproject: my-project-1\n{text}\n")
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, message


def test_gke_spot_true_still_means_spot_pools(tmp_path):
    config = config_of(tmp_path, "kind: gke\nproject: my-project-1\nspot: false\n")
    assert config.spot_pools is False and config.spot.retries == 3
    config = config_of(tmp_path, "kind: gke\nproject: my-project-1\nspot: {retries: 1}\n")
    assert config.spot_pools is True and config.spot.retries == 1


def test_snakemakes_preemptible_retries_win_over_the_config(tmp_path):
    config = config_of(tmp_path, "kind: google-batch\nproject: my-project-1\nspot: {retries: 5}\n")
    assert SpotPolicy.of(config).retries == 5
    assert SpotPolicy.of(config, preemptible_retries=0).retries == 0
    assert SpotPolicy.of(config, preemptible_retries=2) == SpotPolicy(2, "on-demand")


def test_a_first_submission_tells_the_service_the_spot_retries():
    policy = SpotPolicy(2)
    assert policy.spec(job_spec(preemptible=True)).spot_retries == 2
    assert policy.spec(job_spec()).spot_retries is None


def test_resubmissions_have_their_own_names_and_count_preemptions():
    kind = get_kind("google-batch")
    ctx = context("google-batch", {"project": "my-project-1"})
    retries = SpotRetries(SpotPolicy(1), kind, ctx)
    first = SpotPolicy(1).spec(job_spec("align", 12, preemptible=True))
    lost = JobStatus(JobState.PREEMPTED, reason="the spot VM was preempted")
    again = retries.after(first, lost)
    assert again.message == "job 12 (align) preempted once; again on spot (0 spot retries left)"
    assert again.spec.preemptible and again.spec.attempt_tag == "1p1"
    assert again.spec.spot_retries == 0
    last = retries.after(again.spec, lost)
    assert last.message == "job 12 (align) preempted twice; now on demand"
    assert not last.spec.preemptible and last.spec.attempt_tag == "1p2"
    names = {kind.translate(s, ctx)["jobId"] for s in (first, again.spec, last.spec)}
    assert len(names) == 3
    assert retries.summary() == {"preemptions": 2, "jobs_preempted": 1, "on_demand_fallbacks": 1}


def test_a_service_that_retried_itself_counts_every_preemption():
    kind = get_kind("google-batch")
    ctx = context("google-batch", {"project": "my-project-1"})
    retries = SpotRetries(SpotPolicy(3), kind, ctx)
    lost = JobStatus(JobState.PREEMPTED, reason="preempted", preemptions=4)  # 1 + 3 retries
    out = retries.after(SpotPolicy(3).spec(job_spec("align", 2, preemptible=True)), lost)
    assert out.message == "job 2 (align) preempted 4 times; now on demand"
    assert not out.spec.preemptible


def test_a_kind_without_spot_plans_no_preemption():
    kind = get_kind("local")
    ctx = context("local")
    assert SpotPolicy().plan(job_spec(preemptible=True), kind, ctx) is None

"""What the CLI says about the guard: `cfw up` of a cloud kind with the guard off says that
nothing cloud-side enforces ttl; ttl takes minutes; `cfw guard` needs --once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cfw.backends.registry import get_kind
from cfw.orchestration.guarding import unguarded_line
from support.builders import context

EXTRA = {
    "kubernetes": {"context": "lab", "storage": {"prefix": "s3://b/p"}},
    "tes": {"allowed_cidrs": ["203.0.113.7/32"]},
}


@pytest.mark.parametrize(
    "kind", ["tibanna", "tes", "gke", "azure-batch", "google-batch", "kubernetes"]
)
def test_up_of_a_cloud_kind_with_the_guard_off_says_nothing_enforces_ttl(kind):
    settings = {"guard": {"enabled": False}, "ttl": "2m", **EXTRA.get(kind, {})}
    config = context(kind, settings).config
    assert config.ttl == timedelta(minutes=2)
    line = unguarded_line(get_kind(kind), config, "demo")
    assert line is not None
    assert "nothing cloud-side cancels the jobs" in line and "enforces its ttl" in line
    assert "`cfw guard demo --once`" in line


def test_no_warning_with_the_guard_on_or_on_local():
    cloud = context("tibanna", {}).config
    assert cloud.guard.enabled and unguarded_line(get_kind("tibanna"), cloud, "t") is None
    local = context("local", {"guard": False}).config
    assert unguarded_line(get_kind("local"), local, "local") is None

"""The fault matrix of `cfw up tes` (the Funnel server and AWS Batch cfw provisions)
against moto with real Terraform: the up is interrupted by SIGINT (as Ctrl-C) early, at
a third and at two thirds of its resources, and by SIGKILL (a closed laptop) at a third
(support/interrupt.py says why one point); `cfw down` then exits 0 and nothing carries
the environment's cfw-id."""

from __future__ import annotations

import pytest
import yaml

from support.interrupt import CASES, down_leaves_nothing

pytestmark = [pytest.mark.moto, pytest.mark.timeout(900)]


@pytest.mark.parametrize(("signal_name", "point"), CASES)
def test_down_leaves_nothing_after_an_interrupted_up(tmp_path, aws_env, signal_name, point):
    (tmp_path / "environments").mkdir()
    config = {"kind": "tes", "region": "us-east-1", "allowed_cidrs": ["203.0.113.0/24"]}
    (tmp_path / "environments" / "tes.yaml").write_text(yaml.safe_dump(config))
    down_leaves_nothing(tmp_path, "tes", point, signal_name)

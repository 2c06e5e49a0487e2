"""The fault matrix of `cfw up tibanna` against moto with real Terraform: the up is
interrupted by SIGINT (as Ctrl-C) early, at a third and at two thirds of its resources,
and by SIGKILL (a closed laptop) at a third (support/interrupt.py says why one point);
`cfw down` then exits 0 and nothing carries the environment's cfw-id, and the untaggable
IAM group (matched by its exact name) is gone too."""

from __future__ import annotations

import boto3
import pytest

from support.interrupt import CASES, POINTS, down_leaves_nothing

pytestmark = [pytest.mark.moto, pytest.mark.timeout(900)]


@pytest.mark.parametrize(("signal_name", "point"), CASES)
def test_down_leaves_nothing_after_an_interrupted_up(tmp_path, aws_env, signal_name, point):
    (tmp_path / "environments").mkdir()
    group = f"fault{len(signal_name)}{list(POINTS).index(point)}"
    (tmp_path / "environments" / "tib.yaml").write_text(
        f"kind: tibanna\nregion: us-east-1\nusergroup: {group}\n"
    )
    down_leaves_nothing(tmp_path, "tib", point, signal_name)
    groups = boto3.client("iam").list_groups()["Groups"]
    assert not [g["GroupName"] for g in groups if group in g["GroupName"]]

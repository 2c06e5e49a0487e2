"""Tibanna's own validation of an input JSON, usable offline.

`tibanna.ec2_utils` reads AWS settings when it is imported (`tibanna/vars.py`: it exits
without credentials, and asks STS for the account unless AWS_ACCOUNT_NUMBER is set). The
import here gives it the account and region it would ask for (and placeholder credentials
only when there are none), restores the environment, and then runs Tibanna's
``UnicornInput`` — the parsing and defaulting its run_task Lambda applies — plus the checks
its launch makes before it calls EC2.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any

from cfw.backends._aws import aws_region, session
from cfw.backends.sdk import require
from cfw.backends.tibanna.translate import ebs_problem, fitting_problem
from cfw.core.errors import UserError

CAPACITY_BEHAVIOURS = ("fail", "wait_and_retry", "retry_without_spot", "other_instance_types")
_PLACEHOLDER_ACCOUNT = "000000000000"


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def import_tibanna(region: str | None = None, account: str | None = None) -> Any:
    """`tibanna.ec2_utils`, imported without network access."""
    import sys

    if "tibanna.ec2_utils" in sys.modules:
        return sys.modules["tibanna.ec2_utils"]
    values = {
        "AWS_ACCOUNT_NUMBER": os.environ.get("AWS_ACCOUNT_NUMBER")
        or account
        or _PLACEHOLDER_ACCOUNT,
        "TIBANNA_AWS_REGION": os.environ.get("TIBANNA_AWS_REGION")
        or region
        or aws_region(os.environ)
        or "us-east-1",
    }
    if session(None, os.environ).get_credentials() is None:
        values.update({"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline"})
    with _environ(values):
        return require("tibanna.ec2_utils", "aws")


def validate_input(
    payload: dict[str, Any], region: str | None = None, account: str | None = None
) -> dict[str, Any]:
    """Run Tibanna's validation; return the input as its Lambda would see it.

    Raises UserError naming Tibanna's complaint when the input is not valid.
    """
    ec2_utils = import_tibanna(region, account)
    from tibanna import exceptions

    try:
        unicorn = ec2_utils.UnicornInput(copy.deepcopy(payload))
    except (
        exceptions.MissingFieldInInputJsonException,
        exceptions.MalFormattedInputJsonException,
        exceptions.UnsupportedCWLVersionException,
        TypeError,
    ) as exc:
        raise UserError(f"Tibanna rejects the job's input: {exc}") from exc
    cfg = unicorn.cfg
    problems = []
    if unicorn.jobid != payload.get("jobid"):
        problems.append("jobid is missing")
    if cfg.behavior_on_capacity_limit not in CAPACITY_BEHAVIOURS:
        problems.append(f"behavior_on_capacity_limit {cfg.behavior_on_capacity_limit!r}")
    if cfg.behavior_on_capacity_limit == "retry_without_spot" and not cfg.spot_instance:
        problems.append("retry_without_spot works only with spot_instance")  # run_task's check
    # the volume Tibanna launches: ebs_size plus its image allowance (update_config_ebs_size)
    ebs = ebs_problem(cfg.ebs_size, bool(getattr(cfg, "ebs_size_as_is", False)))
    if ebs:
        problems.append(ebs)
    if not (cfg.instance_type or (cfg.cpu and cfg.mem)):
        problems.append("neither instance_type nor cpu and mem")
    elif not cfg.instance_type:
        # run_task picks from Benchmark's list (create_instance_type_list), +1 GB unless mem_as_is
        fit = fitting_problem(cfg.cpu, cfg.mem, bool(getattr(cfg, "mem_as_is", False)))
        if fit:
            problems.append(fit)
    if problems:
        raise UserError("Tibanna rejects the job's input: " + "; ".join(problems))
    return unicorn.as_dict()

"""JobSpec -> Tibanna input JSON ``{jobid, args, config, _tibanna}``. Pure: no network.

A job runs as Tibanna's ``shell`` language: the job's exact Snakemake command in the job
image on an EC2 instance Tibanna starts. Inputs and outputs go through Snakemake's S3
storage (the environment's data bucket), with the instance role's credentials, so the input
carries no file mappings and no keys. Tibanna's own validation of this document is in
:mod:`cfw.backends.tibanna.validate`.
"""

from __future__ import annotations

import math
import re
import shlex
from functools import cache
from typing import Any

from cfw.backends.base import EnvContext, JobSpec
from cfw.core.errors import UserError, missing_sdk

LANGUAGE = "shell"
PENDING_VALUE = "<set at submit from the environment>"
# names whose values never go into Tibanna's input (it keeps them in plain text in the log
# bucket): credentials; the instance role gives the job its S3 access
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|SESSION|SAS", re.I)
_OVERHEAD_GB = 1  # Tibanna adds 1 GB to `mem` for the instance (mem_as_is false)
_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


def jobid_of(spec: JobSpec) -> str:
    """Tibanna job id == execution name: unique per attempt, [A-Za-z0-9_-], at most 80."""
    return _NAME_RE.sub("-", f"{spec.name}-a{spec.attempt}")[:80]


def forwarded_env(
    names: tuple[str, ...] | list[str], extra: list[str]
) -> tuple[list[str], list[str]]:
    """(names whose values go into the job's environment, names withheld as secrets)."""
    keep, withheld = [], []
    for name in sorted(set(names) | set(extra)):
        (withheld if SECRET_NAME.search(name) else keep).append(name)
    return keep, withheld


@cache
def _instances() -> tuple[tuple[str, int, float, float], ...]:
    """(type, vCPUs, memory GiB, on-demand USD/h) of the EC2 types Tibanna's Benchmark knows."""
    try:
        from Benchmark.classes import instance_list
    except ModuleNotFoundError as exc:
        raise missing_sdk("Benchmark-4dn", "aws") from exc
    rows = instance_list(exclude_t=False)
    return tuple((r["instance_type"], r["cpu"], r["mem_in_gb"], r["cost_in_usd"]) for r in rows)


def resolve_instance_type(machine_type: str, cpu: int, mem_gb: float) -> str:
    """An exact type stays; a family prefix becomes its cheapest type that fits."""
    known = {row[0] for row in _instances()}
    if machine_type in known or ("." in machine_type and not machine_type.endswith(".")):
        return machine_type
    prefix = machine_type.rstrip(".")
    family = [r for r in _instances() if r[0].split(".")[0] == prefix] or [
        r for r in _instances() if r[0].startswith(prefix)
    ]
    if not family:
        raise UserError(
            f"machine_type {machine_type!r} is neither an EC2 instance type nor a family prefix",
            "use an exact type (c5.xlarge) or a family (c5, m6i)",
        )
    need_mem = mem_gb + _OVERHEAD_GB
    fitting = [r for r in family if r[1] >= cpu and r[2] >= need_mem]
    if not fitting:
        biggest = max(family, key=lambda r: (r[1], r[2]))
        raise UserError(
            f"no {prefix} instance has {cpu} vCPUs and {need_mem:g} GiB "
            f"(the largest is {biggest[0]}: {biggest[1]} vCPUs, {biggest[2]:g} GiB)",
            "ask for fewer threads/mem_mb, or another machine_type",
        )
    return min(fitting, key=lambda r: (r[3], r[1], r[2], r[0]))[0]


def ebs_size_gb(spec: JobSpec, config: Any) -> int:
    """disk_mb if the rule sets it; else a multiple of the inputs; else the default."""
    if spec.disk_mb:
        return max(1, math.ceil(spec.disk_mb / 1024))
    if spec.input_size_mb:
        return max(
            config.default_ebs_gb,
            math.ceil(config.ebs_input_multiplier * spec.input_size_mb / 1024),
        )
    return config.default_ebs_gb


def job_command(spec: JobSpec, config: Any) -> str:
    command = spec.command
    if spec.runtime:
        # Tibanna has no per-job time limit; the job's runtime (minutes) becomes one
        limit = spec.runtime * 60
        command = f"timeout --signal=TERM --kill-after=60 {limit} sh -c {shlex.quote(command)}"
    if config.precommand:
        command = f"{config.precommand} && {command}"
    return command


def execution_arn(state_machine_arn: str, name: str) -> str:
    if ":stateMachine:" not in state_machine_arn:
        return f"<execution of {name} on {state_machine_arn}>"
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def translate(spec: JobSpec, ctx: EnvContext) -> dict[str, Any]:
    config, outputs = ctx.config, ctx.outputs
    if spec.gpu:
        raise UserError(
            f"rule {spec.rule} asks for {spec.gpu} GPU(s); Tibanna jobs get no GPUs",
            "run it on an environment whose kind has GPUs (gke, google-batch, azure-batch)",
        )
    mem_gb = math.ceil((spec.mem_mb or config.default_mem_mb) / 512) / 2  # 0.5 GiB steps
    cpu = max(1, spec.threads)
    keep, _ = forwarded_env(spec.env, config.pass_env)
    jobid = jobid_of(spec)
    run_config: dict[str, Any] = {
        "log_bucket": outputs["log_bucket"],
        "cpu": cpu,
        "mem": mem_gb,
        "ebs_size": ebs_size_gb(spec, config),
        "root_ebs_size": config.root_ebs_gb,
        "spot_instance": spec.preemptible,
        "behavior_on_capacity_limit": (
            "retry_without_spot"
            if spec.preemptible and config.spot_fallback
            else config.on_capacity_limit
        ),
        "shutdown_min": config.shutdown_min,
        "run_name": jobid,
        "public_postrun_json": False,
    }
    if spec.machine_type:
        run_config["instance_type"] = resolve_instance_type(spec.machine_type, cpu, mem_gb)
    if config.subnets:
        run_config["subnet"] = list(config.subnets)
    for key, value in (
        ("security_group", config.security_group),
        ("key_name", config.key_name),
        ("ami_id", config.ami_id),
    ):
        if value:
            run_config[key] = value
    return {
        "jobid": jobid,
        "args": {
            "language": LANGUAGE,
            "app_name": f"snakemake-{spec.rule}",  # not a Benchmark app: no benchmarking
            "container_image": spec.image,
            "command": job_command(spec, config),
            "output_S3_bucket": outputs["data_bucket"],
            "input_files": {},
            "output_target": {},
            "input_env": dict.fromkeys(keep, PENDING_VALUE),
        },
        "config": run_config,
        "_tibanna": {
            "run_name": jobid,
            "run_type": "cfw",
            "env": ctx.name,
            "exec_arn": execution_arn(outputs["state_machine_arn"], jobid),
        },
    }

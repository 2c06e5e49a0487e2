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
MEM_OVERHEAD_GB = 1  # Tibanna adds 1 GB to `mem` for the instance (mem_as_is false)
_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


def jobid_of(spec: JobSpec) -> str:
    """Tibanna job id == execution name: unique per attempt, [A-Za-z0-9_-], at most 80."""
    return _NAME_RE.sub("-", f"{spec.name}-a{spec.attempt_tag}")[:80]


def forwarded_env(
    names: tuple[str, ...] | list[str], extra: list[str]
) -> tuple[list[str], list[str]]:
    """(names whose values go into the job's environment, names withheld as secrets)."""
    keep, withheld = [], []
    for name in sorted(set(names) | set(extra)):
        (withheld if SECRET_NAME.search(name) else keep).append(name)
    return keep, withheld


# Tibanna's launch (ec2_utils.update_config_ebs_size, create_launch_template): unless
# ebs_size_as_is, 5 GB are added for the container image, at least 10 GB are used, and a
# size of 16000 GB or more is refused when the instance is launched
IMAGE_ALLOWANCE_GB = 5
MIN_EBS_GB = 10
EBS_LIMIT_GB = 16000
_ARM_FAMILY = re.compile(r"a1|[a-z]+\d+[a-z]*g[a-z]*")  # Graviton: m7g, c6gn, r8gd, t4g, a1


def launch_ebs_gb(ebs_size: int, as_is: bool = False) -> int:
    """The data volume Tibanna launches for a config's ebs_size."""
    return max(MIN_EBS_GB, ebs_size + (0 if as_is else IMAGE_ALLOWANCE_GB))


def ebs_problem(ebs_size: Any, as_is: bool = False) -> str | None:
    if not isinstance(ebs_size, int) or isinstance(ebs_size, bool):
        return f"ebs_size {ebs_size!r} is not a whole number of GB"
    size = launch_ebs_gb(ebs_size, as_is)
    if size < EBS_LIMIT_GB:
        return None
    added = "" if as_is else f" (Tibanna adds {IMAGE_ALLOWANCE_GB} GB for the image)"
    return (
        f"ebs_size {ebs_size} GB becomes a {size} GB volume{added}; "
        f"EBS volumes must stay below {EBS_LIMIT_GB} GB"
    )


@cache
def _benchmark_instances() -> tuple[tuple[str, int, float, float], ...]:
    """(type, vCPUs, memory GiB, on-demand USD/h) of the EC2 types Tibanna's Benchmark
    knows: what Tibanna's run_task picks from when it is given cpu and mem."""
    try:
        from Benchmark.classes import instance_list
    except ModuleNotFoundError as exc:
        raise missing_sdk("Benchmark-4dn", "aws") from exc
    rows = instance_list(exclude_t=False)
    return tuple((r["instance_type"], r["cpu"], r["mem_in_gb"], r["cost_in_usd"]) for r in rows)


@cache
def _table_instances() -> tuple[tuple[str, int, float, float], ...]:
    """cfw's table of current x86 families Benchmark does not list (ec2_types.csv)."""
    import csv
    from importlib.resources import files

    text = files("cfw.backends.tibanna").joinpath("ec2_types.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        (r["instance_type"], int(r["vcpus"]), float(r["memory_gib"]), float(r["usd_per_hour"]))
        for r in rows
    )


@cache
def _instances() -> tuple[tuple[str, int, float, float], ...]:
    """Benchmark's types, then the table's types Benchmark lacks."""
    known = _benchmark_instances()
    names = {row[0] for row in known}
    return known + tuple(row for row in _table_instances() if row[0] not in names)


def is_arm(machine_type: str) -> bool:
    return bool(_ARM_FAMILY.fullmatch(machine_type.split(".")[0]))


def fitting_problem(cpu: int, mem_gb: float, mem_as_is: bool = False) -> str | None:
    """Why no type Tibanna picks from (given cpu and mem) fits, or None. Tibanna adds its
    1 GB overhead to mem (unless mem_as_is) and fails in its Lambda when nothing fits."""
    need_mem = mem_gb + (0 if mem_as_is else MEM_OVERHEAD_GB)
    rows = _benchmark_instances()
    if any(r[1] >= cpu and r[2] >= need_mem for r in rows):
        return None
    most_cpu = max(rows, key=lambda r: (r[1], r[2]))
    most_mem = max(rows, key=lambda r: (r[2], r[1]))
    return (
        f"no EC2 instance type Tibanna picks from has {cpu} vCPUs and {need_mem:g} GiB "
        f"(at most {most_cpu[1]} vCPUs, {most_mem[2]:g} GiB)"
    )


def resolve_instance_type(machine_type: str, cpu: int, mem_gb: float) -> str:
    """An exact type stays; a family prefix becomes its cheapest type that fits."""
    if is_arm(machine_type):
        raise UserError(
            f"machine_type {machine_type!r} is an Arm (Graviton) type; cfw runs Tibanna jobs "
            "on x86 only (its job images and an ami_id setting are x86)",
            "use an x86 family (m7i, c7i, r7i, m6i, c6a, ...)",
        )
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
    need_mem = mem_gb + MEM_OVERHEAD_GB
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
    problem = ebs_problem(run_config["ebs_size"])
    if problem:
        raise UserError(f"rule {spec.rule}: {problem}", "ask for less disk_mb")
    if spec.machine_type:
        run_config["instance_type"] = resolve_instance_type(spec.machine_type, cpu, mem_gb)
    else:
        problem = fitting_problem(cpu, mem_gb)
        if problem:
            raise UserError(
                f"rule {spec.rule}: {problem}", "ask for fewer threads/mem_mb, or a machine_type"
            )
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

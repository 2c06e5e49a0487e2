"""Snakemake job -> backend-neutral JobSpec (cfw's resource vocabulary)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cfw.backends.base import JobSpec
from cfw.executor.resources import check_resources

_TRUE = {"1", "true", "yes", "on", "y", "t"}


def dns_name(*parts: Any, limit: int = 63) -> str:
    """A DNS-1123 label from parts: lowercase, [a-z0-9-], at most ``limit`` characters."""
    raw = "-".join(str(p) for p in parts if str(p))
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:limit].rstrip("-")
    return name or "job"


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in _TRUE


def resources_of(job: Any) -> dict[str, Any]:
    res = job.resources
    items = res.items() if hasattr(res, "items") else dict(res).items()
    return {k: v for k, v in items if not k.startswith("_")}


def build_spec(
    *,
    rule: str,
    jobid: int,
    run_id: str,
    command: str,
    image: str,
    threads: int,
    resources: Mapping[str, Any],
    env_names: list[str],
    attempt: int = 1,
    preemptible_rule: bool = False,
    wildcards: Mapping[str, Any] | None = None,
    input_size_mb: int = 0,
) -> JobSpec:
    check_resources(rule, threads, resources)
    gpu = as_int(resources.get("gpu")) or as_int(resources.get("nvidia_gpu")) or 0
    gpu_model = resources.get("gpu_model") or None
    if gpu_model and gpu == 0:
        gpu = 1  # a model without a count means one GPU (as Snakemake's docs had it)
    machine_type = resources.get("machine_type") or None
    return JobSpec(
        name=dns_name("cfw", run_id, jobid, rule),
        rule=rule,
        jobid=jobid,
        run_id=run_id,
        command=command,
        image=image,
        threads=max(1, int(threads or 1)),
        mem_mb=as_int(resources.get("mem_mb")),
        disk_mb=as_int(resources.get("disk_mb")),
        runtime=as_int(resources.get("runtime")),
        machine_type=str(machine_type) if machine_type else None,
        gpu=gpu,
        gpu_model=str(gpu_model) if gpu_model else None,
        preemptible=preemptible_rule or as_bool(resources.get("preemptible", False)),
        env=tuple(sorted(env_names)),
        attempt=attempt,
        wildcards={k: str(v) for k, v in (wildcards or {}).items()},
        input_size_mb=input_size_mb,
    )


def spec_from_job(
    job: Any,
    *,
    run_id: str,
    command: str,
    image: str,
    env_names: list[str],
    preemptible_rule: bool,
    input_sizes: Mapping[Any, int | None] | None = None,
) -> JobSpec:
    """``input_sizes``: bytes per input file, as Snakemake's scheduler measured them."""
    wildcards = {} if job.is_group() else dict(getattr(job, "wildcards_dict", {}) or {})
    rule = job.name if job.is_group() else job.rule.name
    return build_spec(
        rule=rule,
        jobid=job.jobid,
        run_id=run_id,
        command=command,
        image=image,
        threads=job.threads,
        resources=resources_of(job),
        env_names=env_names,
        attempt=job.attempt,
        preemptible_rule=preemptible_rule,
        wildcards=wildcards,
        input_size_mb=round(sum((input_sizes or {}).get(f) or 0 for f in job.input) / 2**20),
    )

"""JobSpec -> a GA4GH TES v1.1 task (the body of CreateTask). Pure: no network, no SDK.

Environment variables: TES has no secrets. A task's env travels in the task document and
the server keeps it, so anyone who may read the task (GetTask BASIC/FULL) sees the values.
cfw therefore never puts a credential into a task unless the environment's config says so
(``storage.pass_credentials``): storage credentials are withheld, and the compute reaches
the bucket with its own IAM role (the provisioned Funnel's Batch instances have one). The
payload carries placeholders; :func:`fill_env` puts the values in at submission.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cfw.backends.base import EnvContext, JobSpec

WORKDIR = "/cfw/work"  # a TES volume: writable even where the container's root is read-only
SCRATCH = "/tmp"
# names of variables that hold credentials (Snakemake's storage plugins: *_ACCESS_KEY,
# *_SECRET_KEY, *_TOKEN, *_PASSWORD; AWS_*; anything else that says secret/credential)
_CREDENTIAL = re.compile(
    r"ACCESS_KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|_SAS\b|_SAS_", re.IGNORECASE
)


def placeholder(name: str) -> str:
    return f"<value of ${name} at submission>"


def is_credential(name: str) -> bool:
    return bool(_CREDENTIAL.search(name))


def split_env(names: Iterable[str], pass_credentials: bool) -> tuple[list[str], list[str]]:
    """(names sent in tasks, credential names withheld)."""
    sent, withheld = [], []
    for name in sorted(set(names)):
        (withheld if is_credential(name) and not pass_credentials else sent).append(name)
    return sent, withheld


def task_tags(spec: JobSpec, ctx: EnvContext) -> dict[str, str]:
    return {
        "cfw-run": spec.run_id,
        "cfw-job": str(spec.jobid),
        "cfw-rule": spec.rule,
        "cfw-attempt": str(spec.attempt),
        "cfw-env": ctx.name,
        "cfw-id": ctx.env_id,
    }


def run_filter(run_id: str, env_id: str) -> dict[str, str]:
    """The tags ListTasks filters on to find the tasks of one run."""
    return {"cfw-run": run_id, "cfw-id": env_id}


def resources(spec: JobSpec, zones: list[str]) -> dict[str, Any]:
    """threads -> cpu_cores, mem_mb -> ram_gb, disk_mb -> disk_gb (GB = 1000 MB, as TES and
    Snakemake count), preemptible; what TES has no field for goes to backend_parameters."""
    out: dict[str, Any] = {"cpu_cores": max(1, spec.threads), "preemptible": spec.preemptible}
    if spec.mem_mb:
        out["ram_gb"] = round(spec.mem_mb / 1000, 3)
    if spec.disk_mb:
        out["disk_gb"] = round(spec.disk_mb / 1000, 3)
    if zones:
        out["zones"] = list(zones)
    params = {}
    if spec.machine_type:
        params["machine_type"] = spec.machine_type
    if spec.gpu:
        params["gpu"] = str(spec.gpu)
    if spec.gpu_model:
        params["gpu_model"] = spec.gpu_model
    if params:
        out["backend_parameters"] = params
    return out


def translate(spec: JobSpec, ctx: EnvContext) -> dict[str, Any]:
    config = ctx.config
    sent, _ = split_env(spec.env, config.storage.pass_credentials)
    env = {"HOME": WORKDIR, "TMPDIR": SCRATCH}
    env.update({name: placeholder(name) for name in sent})
    return {
        "name": spec.name,
        "description": (
            f"Snakemake rule {spec.rule}, job {spec.jobid} (attempt {spec.attempt}) "
            f"of run {spec.run_id} in cfw environment {ctx.name}"
        ),
        "executors": [
            {
                "image": spec.image,
                "command": ["/bin/bash", "-c", spec.command],
                "workdir": WORKDIR,
                "env": env,
            }
        ],
        "resources": resources(spec, list(config.zones)),
        "volumes": [WORKDIR, SCRATCH],
        "tags": task_tags(spec, ctx),
    }


def fill_env(task: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The task with each placeholder replaced by its value (dropped if there is none)."""
    filled = copy.deepcopy(dict(task))
    for executor in filled.get("executors", []):
        env = executor.get("env") or {}
        for name in list(env):
            if env[name] == placeholder(name):
                if name in values:
                    env[name] = values[name]
                else:
                    del env[name]
    return filled

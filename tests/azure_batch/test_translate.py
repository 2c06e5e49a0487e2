"""Submissions: each JobSpec becomes an Add Task body built from the azure-batch SDK's model
classes, serialised as the service receives it, for a matrix of resources; the pool that
fits is chosen; secrets are references, never values."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from datetime import timedelta

import pytest
from azure.batch import models as bm
from azure.batch._utils.model_base import SdkJSONEncoder

from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.translate import SAS_READ, SAS_WRITE, choose_pool, translate
from cfw.backends.base import EnvContext
from cfw.core.errors import UserError
from support.builders import context, job_spec

POOLS = [
    {
        "vm_size": "Standard_D4s_v3",
        "task_slots_per_node": 4,
        "memory_mb": 16000,
        "max_low_priority_nodes": 4,
    },
    {
        "vm_size": "Standard_E16s_v3",
        "task_slots_per_node": 16,
        "memory_mb": 128000,
        "max_low_priority_nodes": 0,
    },
    {
        "vm_size": "Standard_NC6s_v3",
        "task_slots_per_node": 6,
        "gpus": 1,
        "gpu_model": "V100",
        "memory_mb": 112000,
    },
]
IMAGE = "reg.example/snakemake-azure:9"
RUN = "r20260101"
COMMAND = (
    "python -m snakemake --deploy-sources 'az://data/u/w/src.tar.xz' abc "
    "&& python -m snakemake --target-jobs 'all:' --cores 'all' --default-resources "
    "'mem_mb=min(1000, 2*input.size_mb)'"
)


def make_ctx(**overrides) -> EnvContext:
    """An environment before `up` (the outputs are placeholders), as `--explain` sees it."""
    config = {"region": "westeurope", "pools": POOLS, "image": IMAGE, **overrides}
    return context(
        "azure-batch", config, name="ab", up=False, env="ab-adhoc", run_id=RUN, explain=True
    )


def spec(**resources):
    return job_spec(
        run_id=RUN,
        command=COMMAND,
        image=IMAGE,
        env=["SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME", "MY_TOKEN"],
        **resources,
    )


MATRIX = [
    dict(zip(("threads", "mem_mb", "runtime", "machine_type", "preemptible"), combo, strict=True))
    for combo in itertools.product(
        (1, 4, 12), (None, 2000, 60000), (None, 90), (None, "Standard_E"), (False, True)
    )
]


@pytest.mark.parametrize(
    "resources", MATRIX, ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items())
)
def test_task_matrix_is_a_valid_sdk_task(resources):
    ctx = make_ctx()
    job = spec(**{k: v for k, v in resources.items() if v is not None})
    payload = translate(job, ctx)
    body = payload["task"]
    # the SDK reads the body back and writes exactly the same JSON: it is the REST shape
    model = bm.BatchTaskCreateOptions(body)
    assert json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True)) == body
    assert set(body) <= {
        "id",
        "displayName",
        "commandLine",
        "containerSettings",
        "environmentSettings",
        "resourceFiles",
        "outputFiles",
        "constraints",
        "requiredSlots",
        "userIdentity",
    }
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", body["id"])
    assert shlex.split(body["commandLine"]) == ["/bin/bash", "-c", COMMAND]
    assert body["requiredSlots"] == job.threads
    assert model.container_settings.image_name == "reg.example/snakemake-azure:9"
    assert model.container_settings.working_directory == "taskWorkingDirectory"
    pool = next(p for p in ctx.config.pools if p.pool_id == payload["pool_id"])
    assert job.threads <= ctx.config.slots(pool)
    assert payload["job_id"] == f"cfw-r20260101-{pool.pool_id}"
    if job.mem_mb:
        assert f"--memory={job.mem_mb}m" in body["containerSettings"]["containerRunOptions"]
        assert pool.memory_mb is None or pool.memory_mb >= job.mem_mb
    if job.runtime:
        assert model.constraints.max_wall_clock_time == timedelta(minutes=job.runtime)
    else:
        assert "maxWallClockTime" not in body["constraints"]
    assert model.constraints.max_task_retry_count == 0
    if job.machine_type:
        assert pool.vm_size.startswith(job.machine_type)
    # environment settings carry references to the submitting side's values, not values
    env = {e["name"]: e["value"] for e in body["environmentSettings"]}
    assert env["MY_TOKEN"] == "<env:MY_TOKEN>"
    assert env["AZURE_CLIENT_ID"] == "<identity-client-id>"
    # stdout/stderr go to the logs container through the pool's identity
    (out,) = body["outputFiles"]
    dest = out["destination"]["container"]
    assert out["filePattern"] == "../std*.txt"
    assert out["uploadOptions"] == {"uploadCondition": "taskcompletion"}
    assert dest["containerUrl"].endswith("/logs")
    assert dest["identityReference"] == {"resourceId": "<identity-resource-id>"}
    assert dest["path"] == f"r20260101/{body['id']}"


@pytest.mark.parametrize(
    ("resources", "pool"),
    [
        ({}, "standard-d4s-v3"),
        ({"threads": 8}, "standard-e16s-v3"),
        ({"mem_mb": 20000}, "standard-e16s-v3"),
        ({"machine_type": "Standard_E16s_v3"}, "standard-e16s-v3"),
        ({"machine_type": "NC"}, "standard-nc6s-v3"),
        ({"gpu": 1}, "standard-nc6s-v3"),
        ({"gpu_model": "v100"}, "standard-nc6s-v3"),
        ({"nvidia_gpu": 1, "threads": 6}, "standard-nc6s-v3"),
    ],
)
def test_pool_that_fits(resources, pool):
    assert choose_pool(make_ctx().config, spec(**resources)).pool_id == pool


def test_gpu_task_asks_docker_for_gpus():
    body = translate(spec(gpu=1), make_ctx())["task"]
    assert "--gpus=all" in body["containerSettings"]["containerRunOptions"]


def test_preemptible_prefers_a_pool_with_low_priority_nodes():
    config = AzureBatchConfig(
        name="ab",
        region="westeurope",
        pools=[
            {"vm_size": "Standard_D4s_v3", "max_low_priority_nodes": 0},
            {"vm_size": "Standard_D4as_v5", "max_dedicated_nodes": 0, "max_low_priority_nodes": 9},
        ],
    )
    assert choose_pool(config, spec(preemptible=True)).pool_id == "standard-d4as-v5"
    assert choose_pool(config, spec()).pool_id == "standard-d4s-v3"


@pytest.mark.parametrize(
    "resources", [{"threads": 32}, {"mem_mb": 500000}, {"machine_type": "Standard_M"}, {"gpu": 4}]
)
def test_no_pool_fits_is_a_user_error_naming_the_pools(resources):
    with pytest.raises(UserError) as caught:
        translate(spec(**resources), make_ctx())
    message = str(caught.value)
    assert "no pool" in message and "standard-d4s-v3 (Standard_D4s_v3, 4 slots" in message
    assert "\n" not in message


def test_sas_mode_and_resource_files_use_placeholders_until_submit():
    ctx = make_ctx(
        output_files_auth="sas",
        resource_files=[{"source": "az://data/ref/genome.fa", "file_path": "genome.fa"}],
    )
    body = translate(spec(), ctx)["task"]
    dest = body["outputFiles"][0]["destination"]["container"]
    assert dest["containerUrl"].endswith(f"/logs?{SAS_WRITE}")
    assert "identityReference" not in dest
    (res,) = body["resourceFiles"]
    assert res["httpUrl"].endswith(f"/data/ref/genome.fa?{SAS_READ}")
    assert res["filePath"] == "genome.fa"
    bm.BatchTaskCreateOptions(body)


def test_long_rule_names_make_valid_unique_task_ids():
    ctx = make_ctx()
    ids = set()
    for attempt in (1, 2):
        job = job_spec("r" * 80, 123456, command="true", image="i", attempt=attempt)
        ids.add(translate(job, ctx)["task"]["id"])
    assert len(ids) == 2 and all(len(i) <= 64 for i in ids)

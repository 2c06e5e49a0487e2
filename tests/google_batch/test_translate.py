"""JobSpec -> Google Batch job, built with google.cloud.batch_v1's message classes, checked
field by field for a matrix of Snakemake resources (the Life Sciences vocabulary: gpu /
nvidia_gpu / gpu_model, preemptible, machine type prefix or exact, no mem_mb)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.cloud import batch_v1

from cfw.backends._google import machines
from cfw.backends._google.gpus import ACCELERATORS, canonical
from cfw.backends.base import EnvContext
from cfw.backends.google_batch.translate import (
    WORKDIR,
    build_request,
    from_json,
    job_id,
    translate,
)
from cfw.backends.registry import resolve
from cfw.core.errors import UserError
from support.builders import context, job_spec

RUN = "01011200abcd"
POLICY = batch_v1.AllocationPolicy
LABEL_KEY, LABEL_VALUE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$"), re.compile(r"^[a-z0-9_-]{0,63}$")


def environment(up: bool = True, **settings: Any) -> EnvContext:
    """An environment of project example-project as `cfw up` leaves it (outputs = the names
    the module gives), or before `up` (placeholders)."""
    config = {"project": "example-project", **settings}
    return context("google-batch", config, up=up, run_id=RUN)


def spec(spot_rule: bool = False, env: tuple[str, ...] = (), **resources: Any):
    return job_spec(
        run_id=RUN,
        command="python -m snakemake --x",
        env=env,
        preemptible_rule=spot_rule,
        **resources,
    )


def request(job, **settings: Any) -> batch_v1.CreateJobRequest:
    req = build_request(job, environment(**settings))
    assert isinstance(req, batch_v1.CreateJobRequest)
    return req


def parts(req: batch_v1.CreateJobRequest):
    task = req.job.task_groups[0].task_spec
    instance = req.job.allocation_policy.instances[0]
    return task, task.runnables[0], instance, instance.policy


# -- the matrix --------------------------------------------------------------------------
MATRIX = [
    # id, threads, resources, preemptible -> machine type, accelerator (model, count) or None
    (
        "gpu-model-without-count",
        2,
        {"gpu_model": "nvidia-tesla-p100", "mem_mb": 8000},
        False,
        "n1-highmem-2",
        ("nvidia-tesla-p100", 1),
    ),
    (
        "gpu-model-with-count",
        4,
        {"gpu_model": "nvidia-tesla-v100", "gpu": 2},
        False,
        "n1-standard-4",
        ("nvidia-tesla-v100", 2),
    ),
    (
        "nvidia-gpu-count-default-model",
        1,
        {"nvidia_gpu": 1},
        False,
        "n1-standard-1",
        ("nvidia-tesla-t4", 1),
    ),
    (
        "gpu-forces-n1-over-prefix",
        4,
        {"nvidia_gpu": 1, "machine_type": "e2-standard"},
        False,
        "n1-standard-4",
        ("nvidia-tesla-t4", 1),
    ),
    (
        "gpu-forces-n1-over-exact",
        2,
        {"gpu": 1, "machine_type": "n2-standard-8"},
        False,
        "n1-standard-2",
        ("nvidia-tesla-t4", 1),
    ),
    (
        "l4-is-built-into-g2",
        4,
        {"gpu_model": "nvidia-l4", "gpu": 2, "mem_mb": 10000},
        False,
        "g2-standard-24",
        ("nvidia-l4", 2),
    ),
    (
        "l4-exact-g2-type",
        4,
        {"gpu_model": "nvidia-l4", "machine_type": "g2-standard-16"},
        False,
        "g2-standard-16",
        ("nvidia-l4", 1),
    ),
    (
        "a100-is-built-into-a2",
        8,
        {"gpu_model": "nvidia-tesla-a100"},
        True,
        "a2-highgpu-1g",
        ("nvidia-tesla-a100", 1),
    ),
    (
        "gpu-exact-n1-within-the-per-gpu-limit",
        8,
        {"gpu_model": "v100", "machine_type": "n1-standard-8"},
        False,
        "n1-standard-8",
        ("nvidia-tesla-v100", 1),
    ),
    (
        "prefix-cheapest-that-fits",
        2,
        {"machine_type": "n2", "mem_mb": 20000},
        False,
        "n2-highmem-4",
        None,
    ),
    (
        "prefix-with-shape",
        8,
        {"machine_type": "n1-highcpu", "mem_mb": 6000},
        True,
        "n1-highcpu-8",
        None,
    ),
    (
        "exact-type",
        2,
        {"machine_type": "c2-standard-8", "mem_mb": 4000},
        False,
        "c2-standard-8",
        None,
    ),
    (
        "exact-type-unknown-here",
        4,
        {"machine_type": "c3-standard-8", "mem_mb": 4000},
        False,
        "c3-standard-8",
        None,
    ),
    ("no-mem-mb", 4, {}, False, "e2-standard-4", None),  # a standard shape
    (
        "preemptible-resource",
        1,
        {"preemptible": True, "mem_mb": 1000},
        False,
        "n1-standard-1",
        None,
    ),
]


def cheapest_that_fits(threads, mem_mb, named, gpus) -> str:
    """Independently of the chooser: scan the catalogue for the types a job may get (its
    prefix, the general families, N1 within the GPU's vCPU limit, or the types with its
    GPUs built in) and take the cheapest with >= threads vCPUs and enough memory."""
    catalogue = [m for m in machines.CATALOGUE.values() if not m.shared_core]
    if gpus is None:
        families = machines.GENERAL_FAMILIES
        pool = [
            m
            for m in catalogue
            if m.gpus == 0
            and (machines.matches(m.name, named) if named else m.name.split("-")[0] in families)
        ]
    elif machines.GPU_MODELS[gpus[0]].family == "n1":
        limit = machines.GPU_MODELS[gpus[0]].max_vcpus[gpus[1]]
        prefix = named if named and named.startswith("n1") else "n1"
        pool = [m for m in catalogue if machines.matches(m.name, prefix) and m.vcpus <= limit]
    else:
        pool = [m for m in catalogue if (m.gpu_model, m.gpus) == gpus]
    # no mem_mb: the standard shape's memory per thread (what the chooser documents)
    need = mem_mb if mem_mb is not None else int(threads * 3840 * 0.9)
    fits = [m for m in pool if m.vcpus >= threads and m.usable_mib >= need]
    assert fits, (threads, mem_mb, named, gpus)
    return min(fits, key=lambda m: (m.price, m.vcpus, m.name)).name


@pytest.mark.parametrize(
    ("threads", "resources", "preemptible_rule", "machine", "gpus"),
    [m[1:] for m in MATRIX],
    ids=[m[0] for m in MATRIX],
)
def test_job_field_by_field(threads, resources, preemptible_rule, machine, gpus):
    job = spec(
        threads=threads,
        spot_rule=preemptible_rule,
        env=("SNAKEMAKE_STORAGE_GCS_PROJECT",),
        disk_mb=resources.pop("disk_mb", 20000),
        runtime=90,
        **resources,
    )
    req = request(job)
    task, runnable, instance, policy = parts(req)
    known = machines.exact(machine)

    assert req.parent == "projects/example-project/locations/us-central1"
    assert req.job_id == f"cfw-{RUN}-7-align-a1"
    # the container runnable: image, Snakemake's command through bash, env by reference
    assert runnable.container.image_uri == "snakemake/snakemake:v9.27.1"
    assert runnable.container.entrypoint == "/bin/bash"
    assert list(runnable.container.commands) == ["-c", "python -m snakemake --x"]
    assert runnable.container.options.split()[:2] == ["--workdir", WORKDIR]
    assert ("--gpus all" in runnable.container.options) == bool(gpus)
    assert dict(runnable.environment.secret_variables) == {
        "SNAKEMAKE_STORAGE_GCS_PROJECT": "projects/example-project/secrets/"
        f"gcp-batch-0a1b2c-{RUN}-SNAKEMAKE_STORAGE_GCS_PROJECT/versions/latest"
    }
    # compute resources from threads and mem_mb
    assert task.compute_resource.cpu_milli == threads * 1000  # never shrunk to fit a type
    if job.mem_mb:
        assert task.compute_resource.memory_mib == job.mem_mb
    elif known:  # no mem_mb: the job gets what the VM can give
        assert task.compute_resource.memory_mib == int(known.memory_mib * machines.USABLE_MEMORY)
    assert task.compute_resource.boot_disk_mib == 20000
    assert policy.boot_disk.size_gb == 30 + 20  # OS and image, plus disk_mb
    assert policy.boot_disk.type_ == "pd-balanced" and policy.boot_disk.image == "batch-debian"
    assert task.max_run_duration.total_seconds() == 90 * 60
    # the machine: the exact type, or the cheapest of the prefix that fits
    assert policy.machine_type == machine
    if known:  # the type holds the job, whether named exactly or chosen
        assert known.vcpus >= threads
        assert job.mem_mb is None or known.usable_mib >= job.mem_mb
    if resources.get("machine_type") != machine:  # chosen by cfw: the cheapest that fits
        assert machine == cheapest_that_fits(threads, job.mem_mb, job.machine_type, gpus)
    # GPUs: accelerators and the driver
    if gpus:
        assert [(a.type_, a.count) for a in policy.accelerators] == [gpus]
        assert instance.install_gpu_drivers is True
    else:
        assert not policy.accelerators and instance.install_gpu_drivers is False
    # spot and retries on preemption only
    spot = job.preemptible
    assert policy.provisioning_model == (
        POLICY.ProvisioningModel.SPOT if spot else POLICY.ProvisioningModel.STANDARD
    )
    if spot:
        assert task.max_retry_count == 3
        (lifecycle,) = task.lifecycle_policies
        assert lifecycle.action == batch_v1.LifecyclePolicy.Action.RETRY_TASK
        assert list(lifecycle.action_condition.exit_codes) == [50001]
    else:
        assert task.max_retry_count == 0 and not task.lifecycle_policies
    # where, as whom, on which network, labelled how
    alloc = req.job.allocation_policy
    assert list(alloc.location.allowed_locations) == ["regions/us-central1"]
    assert alloc.service_account.email == "gcp-batch-0a1b2c@example-project.iam.gserviceaccount.com"
    (nic,) = alloc.network.network_interfaces
    assert nic.network == "projects/example-project/global/networks/gcp-batch-0a1b2c"
    assert nic.subnetwork.endswith("/regions/us-central1/subnetworks/gcp-batch-0a1b2c")
    assert nic.no_external_ip_address is True
    assert list(alloc.tags) == ["gcp-batch-0a1b2c"]
    for labels in (req.job.labels, alloc.labels):
        assert labels["cfw-id"] == "google-batch-0a1b2c" and labels["cfw-env"] == "google-batch"
        assert labels["cfw-run"] == RUN and labels["cfw-job"] == "7"
        assert all(LABEL_KEY.match(k) and LABEL_VALUE.match(v) for k, v in labels.items())
    assert req.job.logs_policy.destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
    assert req.job.task_groups[0].task_count == 1


def test_json_mapping_round_trips_to_the_same_message():
    job = spec(threads=4, spot_rule=True, gpu_model="nvidia-l4", mem_mb=12000, runtime=5)
    ctx = environment()
    payload = translate(job, ctx)
    json.dumps(payload)  # plain JSON
    assert payload["jobId"] == f"cfw-{RUN}-7-align-a1"  # camelCase: the REST JSON mapping
    policy = payload["job"]["allocationPolicy"]["instances"][0]["policy"]
    assert policy["provisioningModel"] == "SPOT"
    assert from_json(payload) == build_request(job, ctx)


def test_cheapest_type_of_a_prefix_is_the_cheapest_that_fits():
    """Independently of the chooser: scan the catalogue for the prefix."""
    for prefix, threads, mem in (("n2", 2, 20000), ("e2", 3, 3000), ("n2d", 16, 200000)):
        fits = [
            m
            for name, m in machines.CATALOGUE.items()
            if machines.matches(name, prefix)
            and m.vcpus >= threads
            and m.usable_mib >= mem
            and not m.shared_core
        ]
        choice = machines.choose(
            threads=threads, mem_mb=mem, machine_type=prefix, gpus=0, gpu_model=None
        )
        assert choice.machine_type == min(fits, key=lambda m: m.price).name


def test_defaults_and_config_settings_shape_the_job():
    job = spec(threads=2, spot_rule=True, mem_mb=3000)
    req = request(
        job,
        machine_type="n2d",
        zones=["us-central1-a", "us-central1-c"],
        preemption_retries=5,
        external_ip=True,
        boot_disk_type="pd-ssd",
    )
    task, runnable, _, policy = parts(req)
    assert policy.machine_type.startswith("n2d-")
    assert list(req.job.allocation_policy.location.allowed_locations) == [
        "zones/us-central1-a",
        "zones/us-central1-c",
    ]
    assert task.max_retry_count == 5
    assert req.job.allocation_policy.network.network_interfaces[0].no_external_ip_address is False
    assert policy.boot_disk.type_ == "pd-ssd"
    assert not runnable.environment.secret_variables
    no_runtime = parts(request(spec(mem_mb=100)))[0]
    assert not no_runtime.max_run_duration  # no runtime: no limit set


def test_job_ids_are_valid_and_differ_per_attempt():
    long = spec(rule="a_very_long_rule_name_that_goes_on_and_on_and_on_and_on", jobid=12345)
    first, again = job_id(long), job_id(spec(rule=long.rule, jobid=12345, attempt=2))
    for jid in (first, again):
        assert re.match(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", jid), jid
    assert first != again and first.endswith("-a1") and again.endswith("-a2")


def test_secret_values_never_reach_the_payload():
    """translate never sees values; the payload holds Secret Manager references only."""
    job = spec(env=("API_TOKEN", "SNAKEMAKE_STORAGE_GCS_PROJECT"))
    text = json.dumps(translate(job, environment()))
    refs = json.loads(text)["job"]["taskGroups"][0]["taskSpec"]["runnables"][0]["environment"]
    assert set(refs["secretVariables"]) == {"API_TOKEN", "SNAKEMAKE_STORAGE_GCS_PROJECT"}
    assert "variables" not in refs or "API_TOKEN" not in refs["variables"]


def test_placeholders_before_up():
    payload = translate(spec(gpu=1), environment(up=False))
    alloc = payload["job"]["allocationPolicy"]
    assert alloc["serviceAccount"]["email"] == "ENV_ID@example-project.iam.gserviceaccount.com"
    assert alloc["labels"]["cfw-id"] == "ENV_ID"


@pytest.mark.parametrize(
    ("resources", "threads", "fragment"),
    [
        ({"gpu_model": "nvidia-tesla-t4", "gpu": 3}, 1, "counts of 1, 2, 4, not 3"),
        (
            {"machine_type": "e2-standard-2", "mem_mb": 16000},
            1,
            "less than the rule's mem_mb=16000",
        ),
        ({}, 400, "no machine type of the general-purpose families has 400 vCPUs"),
        ({"machine_type": "e2"}, 64, "no machine type of prefix e2 has 64 vCPUs"),
        (
            {"machine_type": "c2-standard-8"},
            16,
            "machine_type c2-standard-8 has 8 vCPUs, fewer than the rule's threads=16",
        ),
        (
            {"machine_type": "g2-standard-16", "gpu_model": "l4"},
            32,
            "machine_type g2-standard-16 has 16 vCPUs, fewer than the rule's threads=32",
        ),
        (
            {"machine_type": "n1-standard-4", "gpu": 1},
            8,
            "machine_type n1-standard-4 has 4 vCPUs, fewer than the rule's threads=8",
        ),
        (
            {"machine_type": "n1-highmem-2", "gpu": 1, "mem_mb": 20000},
            1,
            "less than the rule's mem_mb=20000",
        ),
        (
            {"machine_type": "n1-standard-64", "gpu_model": "v100"},
            1,
            "n1-standard-64 has 64 vCPUs, more than the limit of 12 vCPUs for 1 "
            "nvidia-tesla-v100 GPU(s)",
        ),
    ],
)
def test_impossible_requests_are_one_line_user_errors(resources, threads, fragment):
    with pytest.raises(UserError) as caught:
        request(spec(threads=threads, **resources))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("model", "machine", "accelerator"),
    [
        ("t4", "n1-standard-1", "nvidia-tesla-t4"),
        ("V100", "n1-standard-1", "nvidia-tesla-v100"),
        ("tesla-p4", "n1-standard-1", "nvidia-tesla-p4"),
        ("a100", "a2-highgpu-1g", "nvidia-tesla-a100"),
        ("a100-80gb", "a2-ultragpu-1g", "nvidia-a100-80gb"),
        ("l4", "g2-standard-4", "nvidia-l4"),
        ("h100", "a3-highgpu-1g", "nvidia-h100-80gb"),
    ],
)
def test_short_gpu_model_names_are_googles_accelerators(model, machine, accelerator):
    _, _, instance, policy = parts(request(spec(gpu=1, gpu_model=model)))
    assert policy.machine_type == machine
    assert [(a.type_, a.count) for a in policy.accelerators] == [(accelerator, 1)]
    assert instance.install_gpu_drivers is True


def test_an_unknown_gpu_model_is_a_user_error_not_an_n1_guess():
    with pytest.raises(UserError) as caught:
        request(spec(gpu=1, gpu_model="k80"))
    message = str(caught.value)
    assert "gpu_model 'k80' is not a GPU model Google Batch offers" in message
    assert "use one of: nvidia-tesla-t4, nvidia-tesla-v100" in message and "a100-80gb" in message
    assert "\n" not in message


def test_both_google_kinds_share_one_gpu_table():
    assert set(machines.GPU_MODELS) == set(ACCELERATORS)
    for name in ACCELERATORS:
        assert canonical(name) == name


MISTAKES = [
    ("gpu_model: k80\n", ["field 'gpu_model'", "'k80' is not a GPU model", "nvidia-l4"]),
    ("machine_type: m9\n", ["field 'machine_type'", "neither a machine type", "families:"]),
    ("region: Europe\n", ["field 'region'", "us-central1"]),
    ("zones: [europe-west4-a]\n", ["zone 'europe-west4-a' is not a zone of region us-central1"]),
    ("bucket: my-google-bucket\n", ["field 'bucket'", "not containing 'goog'"]),
    ("boot_disk_type: hyperdisk\n", ["field 'boot_disk_type'", "'pd-balanced'"]),
    ("preemption_retries: 11\n", ["field 'preemption_retries'", "less than or equal to 10"]),
    ("project: My_Project\n", ["field 'project'", "project id"]),
]


@pytest.mark.parametrize(
    ("text", "fragments"), MISTAKES, ids=[m[0].split(":")[0] for m in MISTAKES]
)
def test_config_mistakes_name_field_and_allowed_values(tmp_path, text, fragments):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "gb.yaml").write_text("kind: google-batch\n" + text)
    with pytest.raises(UserError) as caught:
        resolve(tmp_path, "gb", environ={})
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)

"""Every Job manifest the gke translate makes is valid against the official Kubernetes
OpenAPI schema (kubernetes-validate, strict: no unknown fields) for 1.30 and the newest
version it ships, over a matrix of resource combinations; plus the rules the schema cannot
express (DNS names, label values) and where each job is placed."""

from __future__ import annotations

import functools
import itertools
import json
import re

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.gke.config import GkeConfig, GpuPool, node_pools
from cfw.backends.gke.translate import translate
from cfw.core.errors import UserError
from support import builders

# the schema files are read once per version, not once per manifest
kv_utils.schema_contents = functools.cache(kv_utils.schema_contents)
VERSIONS = ["1.30", kubernetes_validate.latest_version()]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
RUN = "03021200beef"

CONFIG = GkeConfig(
    project="my-project",
    name="gke",
    machine_types=["e2-standard-4", "e2-standard-16", "e2-highmem-8", "n2d-highcpu-32"],
    disk_size_gb=200,  # pods get about half of it: room for disk_mb=100000
    gpu_pools=[
        {"accelerator": "nvidia-l4", "count": 1, "machine_type": "g2-standard-8"},
        {
            "accelerator": "nvidia-tesla-t4",
            "count": 2,
            "machine_type": "n1-standard-8",
            "spot": True,
        },
    ],
)


def context(config: GkeConfig = CONFIG, outputs: dict | None = None) -> EnvContext:
    """An environment before `up` (no outputs: every pool of the config) unless OUTPUTS."""
    return builders.context("gke", config, outputs=outputs or {}, run_id=RUN)


def make_spec(jobid: int = 1, rule: str = "call_variants", **resources) -> JobSpec:
    return builders.job_spec(
        rule,
        jobid,
        run_id=RUN,
        command="python -m snakemake --deploy-sources 'gcs://b/x' && "
        "python -m snakemake --target-jobs 'call_variants:sample=NA12878'",
        **resources,
    )


PLACEMENTS = [
    {},
    {"machine_type": "e2-standard-16"},
    {"machine_type": "e2-highmem"},
    {"machine_type": "n2d"},
    {"preemptible": True},
    {"preemptible": True, "machine_type": "e2-standard"},
    {"gpu": 1},
    {"gpu": 1, "gpu_model": "nvidia-l4"},
    {"gpu": 2, "gpu_model": "t4", "preemptible": True},
    {"gpu": 1, "machine_type": "g2-standard-8"},
]
MATRIX = [
    dict(
        placement,
        threads=threads,
        mem_mb=mem,
        disk_mb=disk,
        runtime=runtime,
        env=env,
        attempt=attempt,
    )
    for placement, threads, mem, disk, runtime, env, attempt in itertools.product(
        PLACEMENTS,
        [1, 3],
        [None, 24000],  # fits every pool of PLACEMENTS but e2-standard-4
        [None, 100000],
        [None, 90],
        [(), ("SNAKEMAKE_STORAGE_GCS_PROJECT", "TOKEN")],
        [1, 2],
    )
]


def check_names(manifest: dict) -> None:
    meta = manifest["metadata"]
    assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
    pod = manifest["spec"]["template"]
    for labels in (meta["labels"], pod["metadata"]["labels"]):
        for key, value in labels.items():
            assert QUALIFIED.match(key), key
            assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)
    for key in (*meta["annotations"], *pod["metadata"]["annotations"]):
        assert QUALIFIED.match(key), key
    for container in pod["spec"]["containers"]:
        for env in container.get("env", []):
            assert "value" not in env, "env values travel in the Secret, never in the spec"


@pytest.mark.parametrize("version", VERSIONS)
def test_matrix_is_valid_against_the_kubernetes_schema(version):
    assert len(MATRIX) == 640
    for i, resources in enumerate(MATRIX):
        payload = translate(make_spec(jobid=i, **resources), context())
        manifest = payload["job"]
        kubernetes_validate.validate(manifest, version, strict=True)
        check_names(manifest)
        assert json.loads(json.dumps(payload)) == payload  # plain JSON, as --explain prints


def test_a_typo_is_caught_by_the_strict_schema():
    manifest = translate(make_spec(), context())["job"]
    manifest["spec"]["backofLimit"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def pod_spec(**resources) -> dict:
    return translate(make_spec(**resources), context())["job"]["spec"]["template"]["spec"]


def pools_of(spec: dict) -> list[str]:
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return next(
        e["values"]
        for e in terms["nodeSelectorTerms"][0]["matchExpressions"]
        if e["key"] == "cfw-pool"
    )


def test_job_shape():
    job = translate(
        make_spec(threads=4, mem_mb=16000, disk_mb=50000, runtime=90, env=("TOKEN",)), context()
    )
    spec = job["job"]["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["activeDeadlineSeconds"] == 90 * 60
    labels = job["job"]["metadata"]["labels"]
    assert labels["cfw-run"] == RUN and labels["cfw-job"] == "1"
    assert spec["template"]["metadata"]["labels"] == labels
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "cfw-jobs" and pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["image"] == "snakemake/snakemake:v9.27.1"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    expected = {"cpu": "4", "memory": "16000Mi", "ephemeral-storage": "50000Mi"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["env"] == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"cfw-{RUN}-env", "key": "TOKEN"}}}
    ]
    assert job["secret"] == {"name": f"cfw-{RUN}-env", "namespace": "cfw-jobs", "keys": ["TOKEN"]}
    assert "tolerations" not in pod and "nodeSelector" not in pod
    # e2-standard-4 is left out: 4 threads need more than the 3.92 vCPUs its nodes give pods
    assert pools_of(pod) == ["od-e2-highmem-8", "od-e2-standard-16", "od-n2d-highcpu-32"]


def test_defaults_without_mem_and_disk():
    container = pod_spec()["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1024Mi"}
    assert "activeDeadlineSeconds" not in translate(make_spec(), context())["job"]["spec"]


def test_machine_type_exact_and_prefix():
    assert pools_of(pod_spec(machine_type="e2-standard-16")) == ["od-e2-standard-16"]
    assert pools_of(pod_spec(machine_type="e2-standard")) == [
        "od-e2-standard-16",
        "od-e2-standard-4",
    ]
    assert pools_of(pod_spec(machine_type="e2")) == [
        "od-e2-highmem-8",
        "od-e2-standard-16",
        "od-e2-standard-4",
    ]


def test_no_pool_fits_names_the_available_types():
    with pytest.raises(UserError) as caught:
        translate(make_spec(machine_type="c3-standard-8"), context())
    message = str(caught.value)
    assert "machine_type 'c3-standard-8' matches no node pool of gke" in message
    assert "e2-highmem-8, e2-standard-16, e2-standard-4, n2d-highcpu-32" in message
    with pytest.raises(UserError, match="matches no node pool"):
        translate(make_spec(machine_type="n2"), context())  # n2 is not n2d


def test_spot_selection_and_toleration():
    spec = pod_spec(preemptible=True, machine_type="e2-standard-4")
    assert spec["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert spec["tolerations"] == [
        {
            "key": "cloud.google.com/gke-spot",
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        }
    ]
    assert pools_of(spec) == ["spot-e2-standard-4"]


def test_preemptible_falls_back_to_on_demand_without_spot_pools():
    config = CONFIG.model_copy(update={"spot_pools": False})
    spec = translate(make_spec(preemptible=True), context(config))["job"]["spec"]["template"]
    assert "tolerations" not in spec["spec"] and all(
        p.startswith("od-") for p in pools_of(spec["spec"])
    )


def test_gpu_limit_selector_and_toleration():
    spec = pod_spec(gpu=1, gpu_model="nvidia-l4")
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["requests"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert pools_of(spec) == ["gpu-l4-g2-standard-8"]
    spot_gpu = pod_spec(gpu=2, gpu_model="tesla-t4", preemptible=True)
    assert spot_gpu["nodeSelector"] == {
        "cloud.google.com/gke-spot": "true",
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
    }
    assert len(spot_gpu["tolerations"]) == 2


@pytest.mark.parametrize(
    ("resources", "fragments"),
    [
        (
            {"gpu": 1, "gpu_model": "nvidia-a100-80gb"},
            ["gpu_model 'nvidia-a100-80gb'", "nvidia-l4, nvidia-tesla-t4"],
        ),
        ({"gpu": 4}, ["asks for 4 GPUs", "at most 2 per node"]),
        ({"gpu": 2, "gpu_model": "t4"}, ["not preemptible", "only Spot pools"]),
        ({"threads": 16, "machine_type": "e2-standard-16"}, ["16 threads", "15.89 vCPUs"]),
        (
            {"mem_mb": 500000, "disk_mb": 900000},
            [
                "asks for 1 threads, 500000 MiB of memory and 900000 MiB of disk",
                "largest node of gke (e2-standard-16, 200 GB boot disk)",
                "59824 MiB of memory and 106496 MiB of disk",
            ],
        ),
        # e2-standard-4 nodes have 16 GiB, of which pods get 13622 MiB
        ({"mem_mb": 14000, "machine_type": "e2-standard-4"}, ["13622 MiB of memory"]),
        ({"disk_mb": 110000}, ["110000 MiB of disk", "raise disk_size_gb"]),
        ({"gpu": 1, "gpu_model": "l4", "mem_mb": 30000}, ["g2-standard-8", "29023 MiB"]),
    ],
)
def test_impossible_requests_are_user_errors(resources, fragments):
    with pytest.raises(UserError) as caught:
        translate(make_spec(**resources), context())
    assert "\n" not in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)


def test_gpu_model_short_names_are_the_shared_google_aliases():
    pool = GpuPool(accelerator="nvidia-h100-80gb", machine_type="a3-highgpu-1g")
    config = CONFIG.model_copy(update={"gpu_pools": [pool]})
    for model in ("h100", "H100-80GB", "nvidia-h100-80gb"):
        spec = translate(make_spec(gpu=1, gpu_model=model), context(config))
        pod = spec["job"]["spec"]["template"]["spec"]
        assert pod["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-h100-80gb"


def test_gpu_without_gpu_pools():
    config = CONFIG.model_copy(update={"gpu_pools": []})
    with pytest.raises(UserError, match=r"no GPU pool.*add gpu_pools"):
        translate(make_spec(gpu=1), context(config))


def test_only_pools_that_exist_are_used():
    made = {p.name: p.machine_type for p in node_pools(CONFIG) if p.name != "od-e2-standard-4"}
    spec = translate(
        make_spec(machine_type="e2-standard"),
        context(outputs={"node_pools": made, "namespace": "team-a", "service_account": "runner"}),
    )
    assert pools_of(spec["job"]["spec"]["template"]["spec"]) == ["od-e2-standard-16"]
    assert spec["job"]["metadata"]["namespace"] == "team-a"
    assert spec["job"]["spec"]["template"]["spec"]["serviceAccountName"] == "runner"


def test_long_rule_names_stay_valid():
    spec = make_spec(jobid=123456, rule="A_Very_Long_Rule_Name_" * 5, attempt=12)
    manifest = translate(spec, context())["job"]
    check_names(manifest)
    assert manifest["metadata"]["name"].endswith("-a12")


def test_kind_and_translate_import_no_cloud_sdk():
    import subprocess
    import sys

    code = (
        "import sys; from cfw.backends.registry import get_kind; k = get_kind('gke'); "
        "import cfw.backends.gke.translate; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'google')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

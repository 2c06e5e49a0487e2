"""Every Job manifest kind `kubernetes` makes is valid against the official Kubernetes OpenAPI
schema (kubernetes-validate, strict: no unknown fields) for 1.30 and the newest version it
ships, over a matrix of resources, pools, storage schemes and Pod Security levels; plus
where each job is placed (pool selectors, tolerations, GPU limits), what is refused before
submission, and that credentials travel only in the run's Secret."""

from __future__ import annotations

import functools
import itertools
import json
import re
import subprocess
import sys

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest

from cfw.backends.base import JobSpec
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.registry import get_kind
from cfw.core.errors import UserError
from support import builders

kv_utils.schema_contents = functools.cache(kv_utils.schema_contents)
VERSIONS = ["1.30", kubernetes_validate.latest_version()]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
RUN = "0302aa00beef"
KIND = get_kind("kubernetes")

POOLS = [
    {
        "name": "general",
        "selector": {"node.kubernetes.io/instance-type": "m5.2xlarge"},
        "cpu": 7.9,
        "memory_mb": 30000,
        "disk_mb": 80000,
    },
    {
        "name": "big",
        "selector": {"node.kubernetes.io/instance-type": "m5.8xlarge"},
        "cpu": 31.5,
        "memory_mb": 120000,
    },
    {
        "name": "spot",
        "selector": {"node.kubernetes.io/instance-type": "m5.2xlarge"},
        "spot_preset": "eks",
        "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        "cpu": 7.9,
        "memory_mb": 30000,
        "disk_mb": 60000,
    },
    {
        "name": "gpu",
        "selector": {"nvidia.com/gpu.product": "Tesla-T4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "gpus": 2,
        "gpu_model": "t4",
        "cpu": 15.8,
        "memory_mb": 60000,
    },
    {
        "name": "a100-spot",
        "selector": {"karpenter.k8s.aws/instance-gpu-name": "a100"},
        "spot_preset": "karpenter",
        "gpus": 8,
        "gpu_model": "nvidia-a100",
        "machine_type": "p4d.24xlarge",
        "cpu": 95,
        "memory_mb": 1100000,
    },
]


def config(**settings) -> KubernetesConfig:
    data = {
        "kind": "kubernetes",
        "name": "lab",
        "namespace": "snakemake",
        "storage": {"prefix": "s3://lab-bucket/cfw"},
        "node_pools": POOLS,
        **settings,
    }
    return KubernetesConfig.model_validate(data)


CONFIG = config()


def context(cfg: KubernetesConfig = CONFIG, outputs: dict | None = None):
    return builders.context("kubernetes", cfg, name="lab", outputs=outputs, run_id=RUN)


def make_spec(jobid: int = 1, rule: str = "call_variants", **resources) -> JobSpec:
    return builders.job_spec(
        rule,
        jobid,
        run_id=RUN,
        command="python -m snakemake --deploy-sources 's3://lab-bucket/cfw/x' && "
        "python -m snakemake --target-jobs 'call_variants:sample=NA12878'",
        **resources,
    )


def translate(cfg: KubernetesConfig = CONFIG, **resources) -> dict:
    return KIND.translate(make_spec(**resources), context(cfg))


def pod(cfg: KubernetesConfig = CONFIG, **resources) -> dict:
    return translate(cfg, **resources)["job"]["spec"]["template"]["spec"]


PLACEMENTS = [
    {},
    {"machine_type": "m5.8xlarge"},
    {"machine_type": "m5"},
    {"preemptible": True},
    {"gpu": 1},
    {"gpu": 2, "gpu_model": "tesla-t4"},
    {"gpu": 4, "preemptible": True},
    {"gpu": 1, "gpu_model": "a100", "preemptible": True, "machine_type": "p4d"},
]
CONFIGS = {
    "pools": CONFIG,
    "anywhere": config(node_pools=[]),
    "gcs-restricted": config(
        storage={"prefix": "gcs://lab-bucket/cfw"},
        pod_security="restricted",
        image_pull_secrets=["registry"],
    ),
    "azure-identity": config(
        storage={"prefix": "az://lab/cfw", "credentials": "workload-identity"},
        service_account_annotations={"azure.workload.identity/client-id": "0000-1111"},
        pod_security="privileged",
    ),
    "existing": config(create_namespace=False, service_account="pipelines", node_pools=[]),
}
MATRIX = [
    (name, dict(placement, threads=threads, mem_mb=mem, disk_mb=disk, runtime=runtime, env=env))
    for name, placement, threads, mem, disk, runtime, env in itertools.product(
        CONFIGS,
        PLACEMENTS,
        [1, 6],
        [None, 24000],
        [None, 50000],
        [None, 90],
        [(), ("SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "TOKEN")],
    )
]


def check_names(manifest: dict) -> None:
    meta = manifest["metadata"]
    assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
    template = manifest["spec"]["template"]
    for labels in (meta["labels"], template["metadata"]["labels"]):
        for key, value in labels.items():
            assert QUALIFIED.match(key), key
            assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)
    for key in (*meta["annotations"], *template["metadata"]["annotations"]):
        assert QUALIFIED.match(key), key
    for env in template["spec"]["containers"][0].get("env", []):
        if "value" in env:  # only the path of a mounted key file is a plain value
            assert env == {
                "name": "GOOGLE_APPLICATION_CREDENTIALS",
                "value": "/var/run/secrets/cfw/gcs-key.json",
            }


@pytest.mark.parametrize("version", VERSIONS)
def test_matrix_is_valid_against_the_kubernetes_schema(version):
    assert len(MATRIX) == 5 * 8 * 32
    for i, (name, resources) in enumerate(MATRIX):
        payload = KIND.translate(make_spec(jobid=i, **resources), context(CONFIGS[name]))
        manifest = payload["job"]
        kubernetes_validate.validate(manifest, version, strict=True)
        check_names(manifest)
        assert json.loads(json.dumps(payload)) == payload  # plain JSON, as --explain prints


def test_a_typo_is_caught_by_the_strict_schema():
    manifest = translate()["job"]
    manifest["spec"]["template"]["spec"]["tolerations"] = [{"key": "x", "operater": "Exists"}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_job_shape():
    job = translate(threads=4, mem_mb=16000, disk_mb=50000, runtime=90, env=("TOKEN",))
    spec = job["job"]["spec"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (0, 3600)
    assert spec["activeDeadlineSeconds"] == 90 * 60
    labels = job["job"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "cfw" and labels["cfw-run"] == RUN
    assert labels["cfw-id"] == "lab-0a1b2c" and labels["cfw-env"] == "lab"
    assert job["job"]["metadata"]["namespace"] == "snakemake"
    template = spec["template"]
    assert template["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        "karpenter.sh/do-not-disrupt": "true",
    }
    pod = template["spec"]
    assert pod["serviceAccountName"] == "cfw-jobs" and pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    expected = {"cpu": "4", "memory": "16000Mi", "ephemeral-storage": "50000Mi"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["env"] == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"cfw-{RUN}-env", "key": "TOKEN"}}}
    ]
    assert job["secret"] == {"name": f"cfw-{RUN}-env", "namespace": "snakemake", "keys": ["TOKEN"]}
    # baseline Pod Security: no privilege escalation, the runtime's seccomp profile
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert job["job"]["metadata"]["annotations"]["cfw/pools"] == "big,general"


def node_terms(spec: dict) -> list[list[dict]]:
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [t["matchExpressions"] for t in terms["nodeSelectorTerms"]]


def test_without_pools_jobs_go_anywhere_with_only_requests():
    cfg = CONFIGS["anywhere"]
    plain = pod(cfg, threads=2, mem_mb=4000, machine_type="m5.xlarge", preemptible=True)
    assert not {"nodeSelector", "affinity", "tolerations"} & set(plain)
    gpu = pod(cfg, gpu=1, gpu_model="a100")
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert "nodeSelector" not in gpu and "affinity" not in gpu


def test_on_demand_jobs_pick_fitting_pools_and_avoid_spot_nodes():
    spec = pod(threads=4, mem_mb=16000)
    # general and big can hold it; spot and the GPU pools cannot (not preemptible; no GPU).
    # The spot pool's nodes are general's machines with EKS's spot label: an untainted spot
    # node would match general's selector, so general's term keeps off that label
    assert node_terms(spec) == [
        [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.2xlarge"]},
            {"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]},
        ],
        [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.8xlarge"]}],
    ]
    assert "tolerations" not in spec and "nodeSelector" not in spec
    # one pool whose nodes no spot pool shares: a plain node selector
    assert pod(threads=16, mem_mb=64000)["nodeSelector"] == {
        "node.kubernetes.io/instance-type": "m5.8xlarge"
    }
    # a spot pool of nothing but the preset's label: every on-demand job keeps off it
    anywhere_spot = config(node_pools=[POOLS[0], {"name": "spot", "spot_preset": "aks"}])
    assert node_terms(pod(anywhere_spot)) == [
        [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.2xlarge"]},
            {
                "key": "kubernetes.azure.com/scalesetpriority",
                "operator": "NotIn",
                "values": ["spot"],
            },
        ]
    ]


def test_preemptible_jobs_go_to_spot_with_its_tolerations():
    spec = pod(preemptible=True)
    assert spec["nodeSelector"] == {
        "eks.amazonaws.com/capacityType": "SPOT",
        "node.kubernetes.io/instance-type": "m5.2xlarge",
    }
    assert spec["tolerations"] == [{"operator": "Exists", "key": "spot", "effect": "NoSchedule"}]
    job = translate(preemptible=True)["job"]
    assert job["spec"]["template"]["metadata"]["annotations"]["cfw/spot"] == "true"
    # no spot pool fits: on demand, as on gke
    big = pod(preemptible=True, threads=16)
    assert "tolerations" not in big
    assert big["nodeSelector"] == {"node.kubernetes.io/instance-type": "m5.8xlarge"}


def test_machine_type_exact_prefix_or_pool_name():
    assert pod(machine_type="m5.8xlarge")["nodeSelector"] == {
        "node.kubernetes.io/instance-type": "m5.8xlarge"
    }
    assert len(node_terms(pod(machine_type="m5"))) == 2  # a family: both on-demand pools
    assert pod(machine_type="big")["nodeSelector"]["node.kubernetes.io/instance-type"] == (
        "m5.8xlarge"
    )
    with pytest.raises(UserError) as caught:
        translate(machine_type="c6i")
    assert "machine_type 'c6i' matches no node pool of lab" in str(caught.value)
    assert "m5.2xlarge, m5.8xlarge" in str(caught.value)
    with pytest.raises(UserError, match="matches no"):
        translate(machine_type="m5.2")  # not a boundary: m5.2xlarge is not in family m5.2


def test_gpu_limit_selector_and_tolerations():
    spec = pod(gpu=2, gpu_model="T4")
    resources = spec["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in resources["requests"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}
    assert spec["tolerations"] == [
        {"operator": "Exists", "key": "nvidia.com/gpu", "effect": "NoSchedule"}
    ]
    a100 = pod(gpu=4, gpu_model="nvidia-tesla-a100", preemptible=True, machine_type="p4d")
    assert a100["nodeSelector"] == {
        "karpenter.k8s.aws/instance-gpu-name": "a100",
        "karpenter.sh/capacity-type": "spot",
    }
    assert a100["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    amd = config(node_pools=[{"name": "mi", "gpus": 1, "gpu_resource": "amd.com/gpu"}])
    assert pod(amd, gpu=1)["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"


@pytest.mark.parametrize(
    ("resources", "fragments"),
    [
        ({"gpu": 1, "gpu_model": "h100"}, ["gpu_model 'h100'", "use one of: nvidia-a100, t4"]),
        ({"gpu": 16}, ["asks for 16 GPUs", "at most 8 per node"]),
        ({"gpu": 4}, ["not preemptible", "only spot pools can hold it"]),
        (
            {"threads": 40, "mem_mb": 500000},
            [
                "asks for 40 threads, 500000 MiB of memory",
                "the biggest node pool of lab that could take it, big, offers 31.5 CPUs, "
                "120000 MiB of memory per node",
            ],
        ),
        ({"disk_mb": 90000, "machine_type": "m5.2xlarge"}, ["90000 MiB of disk", "general"]),
    ],
)
def test_jobs_no_pool_can_hold_are_refused_before_submission(resources, fragments):
    with pytest.raises(UserError) as caught:
        translate(**resources)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_gpu_without_gpu_pools():
    cpu_only = config(node_pools=POOLS[:3])
    with pytest.raises(UserError, match=r"no node pool of lab has GPUs.*add a pool with gpus"):
        translate(cpu_only, gpu=1)


def test_limit_range_and_quota_refuse_what_admission_would():
    cfg = config(node_pools=[], limits={"max_cpu": 4, "max_memory_mb": 8192}, quota={"gpus": 0})
    translate(cfg, threads=4, mem_mb=8192)
    with pytest.raises(UserError, match=r"asks for 6 CPUs; limits\.max_cpu of lab is 4"):
        translate(cfg, threads=6)
    with pytest.raises(
        UserError, match=r"16000 MiB of memory; limits\.max_memory_mb of lab is 8192"
    ):
        translate(cfg, mem_mb=16000)
    with pytest.raises(UserError, match=r"asks for 1 GPUs; quota\.gpus of lab is 0"):
        translate(cfg, gpu=1)


def test_storage_credentials_are_secret_references_or_a_mounted_key():
    s3 = translate(env=("SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "SNAKEMAKE_STORAGE_S3_SECRET_KEY"))
    assert s3["secret"]["keys"] == [
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY",
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY",
    ]
    gcs = translate(CONFIGS["gcs-restricted"], env=("SNAKEMAKE_STORAGE_GCS_PROJECT",))
    spec = gcs["job"]["spec"]["template"]["spec"]
    assert gcs["secret"]["keys"] == ["SNAKEMAKE_STORAGE_GCS_PROJECT", "gcs-key.json"]
    assert {"name": "cfw-credentials", "mountPath": "/var/run/secrets/cfw", "readOnly": True} in (
        spec["containers"][0]["volumeMounts"]
    )
    volume = next(v for v in spec["volumes"] if v["name"] == "cfw-credentials")
    assert volume["secret"] == {
        "secretName": f"cfw-{RUN}-env",
        "items": [{"key": "gcs-key.json", "path": "gcs-key.json"}],
        "defaultMode": 0o440,
    }
    assert {
        "name": "GOOGLE_APPLICATION_CREDENTIALS",
        "value": "/var/run/secrets/cfw/gcs-key.json",
    } in spec["containers"][0]["env"]
    # even without any variable, the key file makes the run's Secret
    assert translate(CONFIGS["gcs-restricted"])["secret"]["keys"] == ["gcs-key.json"]
    azure = config(storage={"prefix": "az://lab/cfw", "account_name": "labdata"})
    assert translate(azure)["secret"]["keys"] == [
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
    ]


def test_workload_identity_jobs_get_no_credentials():
    payload = translate(CONFIGS["azure-identity"])
    assert payload["secret"] is None
    template = payload["job"]["spec"]["template"]
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert "env" not in template["spec"]["containers"][0]
    assert "securityContext" not in template["spec"]  # privileged: nothing asked of jobs
    irsa = config(
        storage={"prefix": "s3://lab-bucket/cfw", "credentials": "workload-identity"},
        service_account_annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/jobs"},
    )
    assert translate(irsa)["secret"] is None


def test_restricted_pod_security_and_private_registry():
    spec = pod(CONFIGS["gcs-restricted"])
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert spec["imagePullSecrets"] == [{"name": "registry"}]


def test_an_existing_namespace_and_service_account():
    cfg = CONFIGS["existing"]
    job = translate(cfg)["job"]
    assert job["metadata"]["namespace"] == "snakemake"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "pipelines"
    outputs = {"namespace": "team-a", "jobs_service_account": "runner"}
    job = KIND.translate(make_spec(), context(cfg, outputs=outputs))["job"]
    assert job["metadata"]["namespace"] == "team-a"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "runner"


def test_long_rule_names_stay_valid():
    spec = make_spec(jobid=123456, rule="A_Very_Long_Rule_Name_" * 5, attempt=12)
    manifest = KIND.translate(spec, context())["job"]
    check_names(manifest)
    assert manifest["metadata"]["name"].endswith("-a12")


def test_kind_and_translate_import_no_cloud_sdk():
    code = (
        "import sys; from cfw.backends.registry import get_kind; k = get_kind('kubernetes'); "
        "import cfw.backends.kubernetes.translate, cfw.backends.kubernetes.status; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'google', 'boto3')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""Config of a `kubernetes` environment: every mistake is one line naming the field and what
is allowed (contexts, namespaces, selectors, tolerations, pools, storage, what only a
created namespace has), and the kubeconfig's contexts are checked before anything
connects."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.kubernetes.kubeconfig import context_of, kubeconfig_paths, read_kubeconfig
from cfw.backends.kubernetes.pools import NodePool
from cfw.backends.registry import resolve
from cfw.core.errors import UserError
from support.kubeconfig import write_kubeconfig

BASE = {"kind": "kubernetes", "storage": {"prefix": "s3://lab-bucket/cfw"}}


def project_with(tmp_path: Path, **settings) -> Path:
    (tmp_path / "environments").mkdir(exist_ok=True)
    data = {**BASE, **settings}
    (tmp_path / "environments" / "kubernetes.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def error_of(tmp_path: Path, **settings) -> str:
    with pytest.raises(UserError) as caught:
        resolve(project_with(tmp_path, **settings), "kubernetes", environ={})
    message = str(caught.value)
    assert "\n" not in message and message.startswith("environments/kubernetes.yaml: ")
    return message


def test_the_smallest_config_and_its_defaults(tmp_path):
    config = resolve(project_with(tmp_path), "kubernetes", environ={}).config
    assert (config.namespace, config.create_namespace, config.context) == ("cfw-jobs", True, None)
    assert config.jobs_service_account == "cfw-jobs"
    assert config.storage.provider == "s3" and config.storage.credentials == "secret"
    assert config.node_pools == [] and config.pod_security == "baseline"
    existing = resolve(
        project_with(tmp_path, create_namespace=False, namespace="default"),
        "kubernetes",
        environ={},
    ).config
    assert existing.jobs_service_account == "default"  # a namespace cfw did not set up


def test_storage_is_required(tmp_path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "kubernetes.yaml").write_text("kind: kubernetes\n")
    with pytest.raises(UserError, match="field 'storage' is required but missing"):
        resolve(tmp_path, "kubernetes", environ={})


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"context": "lab cluster"}, ["field 'context'", "kubeconfig context name"]),
        ({"context": ""}, ["field 'context'"]),
        ({"namespace": "Snakemake"}, ["field 'namespace'", "DNS label"]),
        ({"namespace": "a" * 64}, ["field 'namespace'", "at most 63"]),
        ({"namespace": "-jobs"}, ["field 'namespace'"]),
        ({"namespace": "kube-system"}, ["kube- namespaces belong to the cluster"]),
        ({"namespace": "default"}, ["'default' exists in every cluster", "create_namespace"]),
        ({"service_account": "Jobs_SA"}, ["field 'service_account'", "DNS label"]),
        ({"service_account": "default"}, ["'default' is not one `cfw up` can create"]),
        ({"storage": {"prefix": "https://bucket/x"}}, ["field 'storage.prefix'", "s3://BUCKET"]),
        ({"storage": {"prefix": "s3://"}}, ["field 'storage.prefix'"]),
        (
            {"storage": {"prefix": "gcs://b/x", "endpoint_url": "http://minio:9000"}},
            ["endpoint_url applies to s3 storage only"],
        ),
        (
            {"storage": {"prefix": "s3://b", "credentials": "keys"}},
            ["field 'storage.credentials'", "'secret' or 'workload-identity'"],
        ),
        ({"runners": ["alice"]}, ["field 'runners'", "user:NAME, group:NAME"]),
        ({"runners": ["serviceaccount:ci"]}, ["serviceaccount:NAMESPACE/NAME"]),
        (
            {"create_namespace": False, "runners": ["user:alice"]},
            ["runners is set by `cfw up` when it creates the namespace", "admins"],
        ),
        (
            {"create_namespace": False, "quota": {"cpu": 8}},
            ["quota is set by `cfw up` when it creates the namespace"],
        ),
        ({"quota": {"cpu": 0}}, ["field 'quota.cpu'", "greater than 0"]),
        ({"service_account_annotations": {"bad key!": "x"}}, ["annotation key 'bad key!'"]),
        ({"pod_labels": {"cfw-run": "x"}}, ["'cfw-run' is cfw's own"]),
        ({"pod_security": "strict"}, ["field 'pod_security'", "'baseline'"]),
        ({"image_pull_secrets": ["Registry"]}, ["'Registry' is not a Secret name"]),
        ({"finished_job_ttl": "1 hour"}, ["field 'finished_job_ttl'", "30m, 8h"]),
        ({"kubeconfig": "/tmp/x"}, ["unknown field 'kubeconfig'", "context, create_namespace"]),
    ],
)
def test_config_mistakes_are_one_line(tmp_path, settings, fragments):
    message = error_of(tmp_path, **settings)
    for fragment in fragments:
        assert fragment in message, message


def pool(**settings) -> dict:
    return {"name": "general", "cpu": 8, "memory_mb": 32768, **settings}


@pytest.mark.parametrize(
    ("pools", "fragments"),
    [
        ([pool(name="General")], ["node_pools[0].name", "DNS label"]),
        ([pool(), pool()], ["two node pools are named 'general'"]),
        ([pool(selector={"bad key": "x"})], ["selector key 'bad key' is not valid"]),
        (
            [pool(selector={"example.com/a/b": "x"})],
            ["selector key 'example.com/a/b' is not valid"],
        ),
        ([pool(selector={"disk": "ssd fast"})], ["label value 'ssd fast' of 'disk'"]),
        ([pool(selector={"cloud.google.com/gke-spot": True})], ["label value True", "quote"]),
        ([pool(selector={"tier": "x" * 64})], ["is not valid: at most 63"]),
        ([pool(tolerations=[{"key": "spot", "operator": "Exists", "value": "x"}])], ["no value"]),
        ([pool(tolerations=[{"operator": "Equal", "value": "x"}])], ["Equal needs a key"]),
        ([pool(tolerations=[{"key": "spot", "effect": "NoRun"}])], ["'NoSchedule'"]),
        (
            [pool(tolerations=[{"key": "a", "value": "b", "toleration_seconds": 30}])],
            ["toleration_seconds applies to effect NoExecute only"],
        ),
        ([pool(tolerations=[{"key": "-x-", "operator": "Exists"}])], ["toleration key '-x-'"]),
        ([pool(gpu_model="t4")], ["gpu_model needs gpus"]),
        ([pool(gpus=1, gpu_resource="gpu")], ["extended resource"]),
        ([pool(cpu=0)], ["node_pools[0].cpu", "greater than 0"]),
        ([pool(memory_mb=-1)], ["node_pools[0].memory_mb"]),
        ([pool(spot_preset="ec2")], ["'eks', 'karpenter', 'aks' or 'gke'"]),
        (
            [pool(spot_preset="eks", selector={"eks.amazonaws.com/capacityType": "ON_DEMAND"})],
            ["contradicts spot_preset eks"],
        ),
        ([pool(machine="m5.large")], ["unknown field 'node_pools[0].machine'", "machine_type"]),
    ],
)
def test_pool_mistakes_are_one_line(tmp_path, pools, fragments):
    message = error_of(tmp_path, node_pools=pools)
    for fragment in fragments:
        assert fragment in message, message


def test_spot_presets_add_the_platforms_labels_and_taints():
    aks = NodePool(name="spot", spot_preset="aks", selector={"agentpool": "spot"})
    assert aks.is_spot and aks.node_selector == {
        "agentpool": "spot",
        "kubernetes.azure.com/scalesetpriority": "spot",
    }
    assert [t.manifest() for t in aks.pod_tolerations] == [
        {
            "operator": "Equal",
            "key": "kubernetes.azure.com/scalesetpriority",
            "value": "spot",
            "effect": "NoSchedule",
        }
    ]
    eks = NodePool(name="spot", spot_preset="eks")
    assert eks.node_selector == {"eks.amazonaws.com/capacityType": "SPOT"}
    assert eks.pod_tolerations == []  # EKS does not taint spot nodes by itself
    plain = NodePool(name="m5", selector={"node.kubernetes.io/instance-type": "m5.2xlarge"})
    assert plain.instance_type == "m5.2xlarge" and not plain.is_spot


def test_the_example_config_validates_and_round_trips():
    from cfw.core.assets import example_environments_dir

    examples = example_environments_dir()
    config = resolve(examples.parent, "kubernetes", environ={}).config
    assert [p.name for p in config.node_pools] == ["general", "spot", "gpu"]
    dumped = config.model_dump(mode="json", exclude_none=True)
    assert KubernetesConfig.model_validate(dumped) == config


# -- the kubeconfig -------------------------------------------------------------------------
def test_kubeconfig_is_the_one_kubectl_reads(tmp_path):
    first = write_kubeconfig(tmp_path / "a.yaml", "https://a", "t", contexts=("lab",))
    second = write_kubeconfig(
        tmp_path / "b.yaml", "https://b", "t", contexts=("lab", "prod"), current="prod"
    )
    environ = {"KUBECONFIG": f"{first}:{tmp_path / 'missing.yaml'}:{second}"}
    kubeconfig = read_kubeconfig(environ)
    assert kubeconfig.files == (first, second)  # a missing file is skipped, as kubectl does
    assert kubeconfig.contexts == ("lab", "prod") and kubeconfig.current == "lab"  # first wins
    assert kubeconfig_paths({"HOME": str(tmp_path)}) == [tmp_path / ".kube" / "config"]


def test_context_must_be_in_the_kubeconfig(tmp_path):
    path = write_kubeconfig(tmp_path / "config", "https://a", "t", contexts=("lab", "prod"))
    kubeconfig = read_kubeconfig({"KUBECONFIG": str(path)})
    config = KubernetesConfig.model_validate({**BASE, "context": "staging"})
    with pytest.raises(UserError) as caught:
        context_of(config, kubeconfig)
    assert str(caught.value) == (
        f"context 'staging' is not in kubeconfig {path}: use one of: lab, prod"
    )
    assert context_of(KubernetesConfig.model_validate(BASE), kubeconfig) == "lab"
    none = write_kubeconfig(tmp_path / "none", "https://a", "t", current=None)
    with pytest.raises(UserError, match=r"has no current context.*set context:"):
        context_of(
            KubernetesConfig.model_validate(BASE), read_kubeconfig({"KUBECONFIG": str(none)})
        )


def test_no_kubeconfig_says_how_to_get_one(tmp_path):
    with pytest.raises(UserError) as caught:
        read_kubeconfig({"KUBECONFIG": str(tmp_path / "nope")})
    assert "no kubeconfig found" in caught.value.message
    assert "aws eks update-kubeconfig" in caught.value.hint
    (tmp_path / "bad").write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="is not a kubeconfig"):
        read_kubeconfig({"KUBECONFIG": str(tmp_path / "bad")})

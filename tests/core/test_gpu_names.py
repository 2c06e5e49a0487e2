"""The same GPU model names on every kind that has GPUs: a rule's gpu_model may be a short
name (t4, T4, tesla-t4) or Google's (nvidia-tesla-t4), whatever the kind, so a Snakefile
moves between kinds unchanged (backends/_google/gpus.py is the one table)."""

from __future__ import annotations

import json

import pytest

from cfw.backends._google.gpus import same_model
from cfw.backends.registry import get_kind
from support import builders

T4_NAMES = ["t4", "T4", "tesla-t4", "nvidia-t4", "nvidia-tesla-t4", "Tesla-T4"]

CONFIGS = {
    "azure-batch": {
        "region": "westeurope",
        "image": "reg.example/snakemake:9",
        "pools": [
            {"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4},
            {
                "vm_size": "Standard_NC4as_T4_v3",
                "task_slots_per_node": 4,
                "gpus": 1,
                "gpu_model": "T4",
            },
            {
                "vm_size": "Standard_NC6s_v3",
                "task_slots_per_node": 6,
                "gpus": 1,
                "gpu_model": "V100",
            },
        ],
    },
    "kubernetes": {
        "namespace": "snakemake",
        "storage": {"prefix": "s3://lab-bucket/cfw"},
        "node_pools": [
            {"name": "cpu", "selector": {"pool": "cpu"}, "cpu": 8, "memory_mb": 30000},
            {"name": "t4", "selector": {"pool": "t4"}, "gpus": 1, "gpu_model": "Tesla-T4"},
            {"name": "v100", "selector": {"pool": "v100"}, "gpus": 1, "gpu_model": "v100"},
        ],
    },
    "gke": {
        "project": "my-project",
        "machine_types": ["e2-standard-4"],
        "gpu_pools": [
            {"accelerator": "nvidia-tesla-t4", "count": 1, "machine_type": "n1-standard-8"},
            {"accelerator": "nvidia-tesla-v100", "count": 1, "machine_type": "n1-standard-8"},
        ],
    },
    "google-batch": {"project": "my-project"},
}


def submission(kind: str, model: str) -> str:
    ctx = builders.context(kind, CONFIGS[kind], outputs={} if kind == "gke" else None)
    spec = builders.job_spec(gpu=1, gpu_model=model)
    return json.dumps(get_kind(kind).translate(spec, ctx), default=str)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
@pytest.mark.parametrize("model", T4_NAMES)
def test_every_gpu_kind_takes_short_and_google_names(kind: str, model: str):
    assert get_kind(kind).capabilities.gpu
    payload = submission(kind, model)
    # the T4 pool / accelerator, never the V100 one
    wanted = {
        "azure-batch": "standard-nc4as-t4-v3",
        "kubernetes": '"pool": "t4"',
        "gke": "nvidia-tesla-t4",
        "google-batch": "nvidia-tesla-t4",
    }[kind]
    assert wanted in payload.lower(), payload
    assert "v100" not in payload.lower()


def test_same_model():
    assert all(same_model(a, "nvidia-tesla-t4") for a in T4_NAMES)
    assert same_model("A10", "nvidia-a10")  # a model Google does not offer (Azure's)
    assert not same_model("a100", "a100-80gb") and not same_model("t4", None)

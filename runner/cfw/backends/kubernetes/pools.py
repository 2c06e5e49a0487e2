"""The node pools of a `kubernetes` environment: which nodes (a label selector), the taints
its pods tolerate, whether they are spot capacity, and what one node offers a pod.

A cluster cfw did not create has pools cfw cannot see into, so the config describes them;
presets give the labels and taints EKS, Karpenter, AKS and GKE put on their spot nodes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cfw.core.config import Model

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_RESOURCE = "nvidia.com/gpu"


def qualified_name(key: str, what: str = "label") -> str:
    """A label or annotation key: [DNS-subdomain prefix/]name of at most 63 characters."""
    prefix, _, name = key.rpartition("/")
    if not _NAME.match(name) or (prefix and not _PREFIX.match(prefix)) or key.startswith("/"):
        raise ValueError(
            f"{what} key {key!r} is not valid: expected [PREFIX/]NAME, NAME at most 63 letters, "
            "digits, '-', '_' or '.', PREFIX a DNS subdomain"
        )
    return key


def label_value(value: str, key: str) -> str:
    if not isinstance(value, str) or not _VALUE.match(value):
        raise ValueError(
            f"label value {value!r} of {key!r} is not valid: at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (quote true/false)"
        )
    return value


class Toleration(Model):
    """A taint the pods of a pool tolerate, as in a pod spec."""

    key: str | None = Field(None, description="the taint's key (none with Exists: every taint)")
    operator: Literal["Equal", "Exists"] = Field("Equal", description="Equal or Exists")
    value: str | None = Field(None, description="the taint's value (Equal only)")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="the taint's effect (none: every effect)"
    )
    toleration_seconds: int | None = Field(
        None, ge=0, description="NoExecute: how long the pod stays after the taint appears"
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return value if value is None else qualified_name(value, "toleration")

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator Exists has no value")
        if self.operator == "Equal" and not self.key:
            raise ValueError("a toleration with operator Equal needs a key")
        if self.value is not None:
            label_value(self.value, self.key or "")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds applies to effect NoExecute only")
        return self

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        if self.key:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


def _taint(key: str, value: str) -> Toleration:
    return Toleration(key=key, operator="Equal", value=value, effect="NoSchedule")


# the labels (and taints) each platform puts on its spot nodes
SPOT_PRESETS: dict[str, tuple[dict[str, str], tuple[Toleration, ...]]] = {
    # EKS managed node groups label capacity; taints are the node group's own choice
    "eks": ({"eks.amazonaws.com/capacityType": "SPOT"}, ()),
    "karpenter": ({"karpenter.sh/capacity-type": "spot"}, ()),
    # AKS taints every spot pool with this very taint
    "aks": (
        {"kubernetes.azure.com/scalesetpriority": "spot"},
        (_taint("kubernetes.azure.com/scalesetpriority", "spot"),),
    ),
    "gke": ({"cloud.google.com/gke-spot": "true"}, (_taint("cloud.google.com/gke-spot", "true"),)),
}


class NodePool(Model):
    """Nodes a job may be placed on, and what one of them offers a pod (its allocatable
    resources, as `kubectl describe node` shows them)."""

    name: str = Field(..., description="a name for messages and `cfw status`")
    selector: dict[str, str] = Field(
        default_factory=dict, description="node labels that pick the pool's nodes"
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="taints of the pool's nodes the jobs tolerate"
    )
    spot: bool = Field(False, description="spot/preemptible capacity (preemptible rules)")
    spot_preset: Literal["eks", "karpenter", "aks", "gke"] | None = Field(
        None, description="the platform's spot labels and taint (implies spot)"
    )
    machine_type: str | None = Field(
        None,
        description="what a rule's machine_type matches (default: the selector's "
        f"{INSTANCE_TYPE_LABEL})",
    )
    cpu: float | None = Field(None, gt=0, description="CPUs a node offers pods (allocatable)")
    memory_mb: int | None = Field(None, ge=1, description="memory a node offers pods (MiB)")
    disk_mb: int | None = Field(None, ge=1, description="ephemeral storage a node offers (MiB)")
    gpus: int = Field(0, ge=0, le=64, description="GPUs per node")
    gpu_model: str | None = Field(None, description="what a rule's gpu_model matches (t4, a100)")
    gpu_resource: str = Field(GPU_RESOURCE, description="the GPUs' extended resource name")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", value):
            raise ValueError("expected a DNS label: lowercase letters, digits and '-' (max 63)")
        return value

    @field_validator("selector", mode="before")
    @classmethod
    def _selector(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic says what a selector is
        for key, label in value.items():
            qualified_name(key, "selector")
            label_value(label, key)
        return value

    @field_validator("gpu_resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        qualified_name(value, "resource")
        if "/" not in value:
            raise ValueError("a GPU is an extended resource: DOMAIN/NAME, e.g. nvidia.com/gpu")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NodePool:
        if self.gpu_model and not self.gpus:
            raise ValueError(f"pool {self.name}: gpu_model needs gpus (how many per node)")
        if self.spot_preset:
            labels, _ = SPOT_PRESETS[self.spot_preset]
            clash = [k for k, v in labels.items() if self.selector.get(k, v) != v]
            if clash:
                raise ValueError(
                    f"pool {self.name}: selector {clash[0]} contradicts spot_preset "
                    f"{self.spot_preset}"
                )
        return self

    @property
    def is_spot(self) -> bool:
        return self.spot or self.spot_preset is not None

    @property
    def node_selector(self) -> dict[str, str]:
        """The selector with the preset's labels."""
        preset = SPOT_PRESETS[self.spot_preset][0] if self.spot_preset else {}
        return {**self.selector, **preset}

    @property
    def pod_tolerations(self) -> list[Toleration]:
        preset = SPOT_PRESETS[self.spot_preset][1] if self.spot_preset else ()
        return [*self.tolerations, *(t for t in preset if t not in self.tolerations)]

    @property
    def instance_type(self) -> str | None:
        return self.machine_type or self.node_selector.get(INSTANCE_TYPE_LABEL)

    def describe(self) -> str:
        """What one node offers, for messages: "8 CPUs, 32768 MiB of memory"."""
        parts = []
        if self.cpu is not None:
            parts.append(f"{self.cpu:g} CPUs")
        if self.memory_mb is not None:
            parts.append(f"{self.memory_mb} MiB of memory")
        if self.disk_mb is not None:
            parts.append(f"{self.disk_mb} MiB of disk")
        if self.gpus:
            parts.append(f"{self.gpus} GPUs")
        return ", ".join(parts) or "no stated size"

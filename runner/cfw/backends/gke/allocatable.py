"""What a GKE node of a machine type can give to pods: its allocatable CPU, memory and disk.

GKE keeps part of every node for the kubelet, the container runtime and the OS, and the
kubelet evicts pods before the node runs out. The reservation model below is GKE's
published one ("Standard cluster architecture: node allocatable resources",
cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes), as of 2025:

- CPU: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest.
- memory: 255 MiB on machines with less than 1 GiB; else 25% of the first 4 GiB, 20% of
  the next 4 GiB, 10% of the next 8 GiB, 6% of the next 112 GiB and 2% of the rest; plus
  the kubelet's eviction threshold of 100 MiB.
- ephemeral storage (boot disk): an eviction threshold of 10% of the disk, plus a system
  reservation of min(50% of the disk, 6 GiB + 35% of the disk, 100 GiB).

System DaemonSets (logging, metrics, kube-proxy) take a little more on every node, so a
job that fits these numbers exactly may still wait; one that does not fit them never runs.
Machine type sizes come from the Compute Engine catalogue google-batch chooses from;
a type that catalogue does not know is not checked (only its vCPUs, from its name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cfw.backends._google.machines import exact

_VCPUS = re.compile(r"^[a-z0-9]+-(standard|highmem|highcpu)-(\d+)(-lssd)?$")
_MEMORY_TIERS = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06))  # (GiB, reserved share)
_CPU_TIERS = ((1, 0.06), (1, 0.01), (2, 0.005))  # (cores, reserved share); then 0.25%
EVICTION_MIB = 100


@dataclass(frozen=True)
class Node:
    machine_type: str
    vcpus: int | None
    memory_mib: int | None  # the machine's memory; None: a type not in the catalogue
    cpu_milli: int | None  # allocatable
    allocatable_mib: int | None
    disk_mib: int  # allocatable ephemeral storage of the boot disk


def reserved_cpu_milli(vcpus: int) -> int:
    left, reserved = float(vcpus), 0.0
    for cores, share in _CPU_TIERS:
        step = min(left, cores)
        reserved += step * share
        left -= step
    reserved += left * 0.0025
    return round(reserved * 1000)


def reserved_memory_mib(memory_mib: int) -> int:
    if memory_mib < 1024:
        return 255 + EVICTION_MIB
    left, reserved = memory_mib / 1024, 0.0
    for gib, share in _MEMORY_TIERS:
        step = min(left, gib)
        reserved += step * share
        left -= step
    reserved += left * 0.02
    return round(reserved * 1024) + EVICTION_MIB


def reserved_disk_mib(disk_gb: int) -> int:
    disk = disk_gb * 1024
    system = min(0.5 * disk, 6 * 1024 + 0.35 * disk, 100 * 1024)
    return round(0.1 * disk + system)


def node(machine_type: str, disk_gb: int) -> Node:
    """What a node of ``machine_type`` with a ``disk_gb`` boot disk offers to pods."""
    known = exact(machine_type)
    match = _VCPUS.match(machine_type)
    vcpus = known.vcpus if known else (int(match.group(2)) if match else None)
    memory = known.memory_mib if known else None
    return Node(
        machine_type=machine_type,
        vcpus=vcpus,
        memory_mib=memory,
        cpu_milli=vcpus * 1000 - reserved_cpu_milli(vcpus) if vcpus else None,
        allocatable_mib=memory - reserved_memory_mib(memory) if memory else None,
        disk_mib=disk_gb * 1024 - reserved_disk_mib(disk_gb),
    )


def fits(n: Node, threads: int, mem_mb: int, disk_mb: int | None) -> bool:
    """Whether one pod asking for these (MiB, as the manifest requests them) fits a node."""
    return (
        (n.cpu_milli is None or threads * 1000 <= n.cpu_milli)
        and (n.allocatable_mib is None or mem_mb <= n.allocatable_mib)
        and (not disk_mb or disk_mb <= n.disk_mib)
    )

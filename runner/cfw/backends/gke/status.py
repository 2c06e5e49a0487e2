"""What `cfw status` shows of a gke environment: its job nodes per pool and its Jobs by state.
Pure: the lists come from the cluster (kind.py); Job states are the shared ones
(cfw/backends/_kube/status.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cfw.backends._kube.status import count_by_state
from cfw.backends.gke.translate import POOL_LABEL

NO_NODE_ACCESS = "unknown (no permission to list nodes)"


def nodes_per_pool(pools: Iterable[str], nodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Nodes per job pool, by the ``cfw-pool`` label the module sets (the system pool is not
    a job pool)."""
    counts = dict.fromkeys(pools, 0)
    for node in nodes:
        pool = ((node.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL)
        if pool and pool != "system":
            counts[pool] = counts.get(pool, 0) + 1
    return counts


def details(
    pools: Iterable[str],
    nodes: Sequence[Mapping[str, Any]] | None,
    jobs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """``nodes`` None: the caller may not list nodes (a runner's Role is namespaced)."""
    return {
        "nodes": NO_NODE_ACCESS if nodes is None else nodes_per_pool(pools, nodes),
        "jobs": count_by_state(jobs),
    }

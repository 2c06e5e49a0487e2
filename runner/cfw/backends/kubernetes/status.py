"""What `cfw status` shows of a `kubernetes` environment: the nodes each pool's selector
picks and the environment's Jobs by state. Pure: the lists come from the cluster
(cloud.py); Job states are the ones every Kubernetes kind shares
(cfw/backends/_kube/status.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfw.backends._kube.status import count_by_state
from cfw.backends.kubernetes.pools import NodePool

NO_NODE_ACCESS = "unknown (no permission to list nodes)"
ANY = "any"  # the key of all nodes, in an environment without node pools


def _labels(node: Mapping[str, Any]) -> Mapping[str, str]:
    return (node.get("metadata") or {}).get("labels") or {}


def _schedulable(node: Mapping[str, Any]) -> bool:
    return not (node.get("spec") or {}).get("unschedulable")


def nodes_per_pool(pools: Sequence[NodePool], nodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Schedulable nodes whose labels match each pool's selector (a node may match several);
    without pools, every schedulable node."""
    usable = [n for n in nodes if _schedulable(n)]
    if not pools:
        return {ANY: len(usable)}
    return {
        pool.name: sum(
            all(_labels(n).get(k) == v for k, v in pool.node_selector.items()) for n in usable
        )
        for pool in pools
    }


def details(
    pools: Sequence[NodePool],
    nodes: Sequence[Mapping[str, Any]] | None,
    jobs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """``nodes`` None: the caller may not list nodes (they are cluster-scoped; the runner
    Role is not)."""
    return {
        "nodes": NO_NODE_ACCESS if nodes is None else nodes_per_pool(pools, nodes),
        "jobs": count_by_state(jobs),
    }

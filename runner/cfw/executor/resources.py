"""A rule's resources checked before anything is submitted: a negative or absurd
``mem_mb``, ``disk_mb``, ``threads``, ``runtime`` or GPU count is a user mistake named in
one line (Snakemake passes ``mem_mb=-1`` on as ``mem=-1000000 bytes``, and a backend
would otherwise ask its cloud for ``-1Mi``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cfw.core.checks import MAX_DISK_MB, MAX_MEM_MB, MAX_RUNTIME_MIN, shorten
from cfw.core.errors import UserError

# name: (smallest, largest, what it counts)
_BOUNDS: dict[str, tuple[float, float, str]] = {
    "mem_mb": (1, MAX_MEM_MB, "MB of memory"),
    "disk_mb": (0, MAX_DISK_MB, "MB of disk"),
    "runtime": (0, MAX_RUNTIME_MIN, "minutes"),
    "gpu": (0, 64, "GPUs"),
    "nvidia_gpu": (0, 64, "GPUs"),
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_resources(rule: str, threads: Any, resources: Mapping[str, Any]) -> None:
    """Raise UserError naming the rule, the resource and the allowed range."""
    count = _number(threads)
    # no upper bound: `threads: workflow.cores` is as many as a remote run allows
    if threads is not None and (count is None or count < 1):
        raise UserError(
            f"rule {rule}: threads={shorten(threads)} is not a number of threads",
            "give threads as a whole number of at least 1",
        )
    for name, (low, high, what) in _BOUNDS.items():
        value = resources.get(name)
        if value is None or (isinstance(value, str) and value.startswith("<TBD")):
            continue
        number = _number(value)
        if number is None or not low <= number <= high:
            raise UserError(
                f"rule {rule}: {name}={shorten(value)} is not a number of {what} "
                f"from {low:.0f} to {high:.0f}",
                f"set the rule's {name} (or --set-resources {rule}:{name}=...) within that range",
            )

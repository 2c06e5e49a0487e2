"""A prepared Snakemake invocation: what `cfw run` (or its explain) starts."""

from __future__ import annotations

from dataclasses import dataclass

from cfw.backends.base import StorageSpec
from cfw.backends.kind import Kind


@dataclass
class Prepared:
    """Snakemake's command line and environment for one run on one environment."""

    kind: Kind
    argv: list[str]
    env: dict[str, str]
    storage: StorageSpec

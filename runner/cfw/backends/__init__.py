"""The registry of environment kinds. Each kind lives in its own package."""

from __future__ import annotations

import importlib
from functools import cache

from cfw.backends.kind import Kind
from cfw.core.errors import UserError

KIND_MODULES = {
    "local": "cfw.backends.local.kind",
    "gke": "cfw.backends.gke.kind",
    "tibanna": "cfw.backends.tibanna.kind",
    "tes": "cfw.backends.tes.kind",
    "azure-batch": "cfw.backends.azure_batch.kind",
    "google-batch": "cfw.backends.google_batch.kind",
}


def kind_names() -> list[str]:
    return list(KIND_MODULES)


@cache
def get_kind(name: str) -> Kind:
    module = KIND_MODULES.get(name)
    if module is None:
        raise UserError(
            f"{name!r} is not a known kind",
            f"use one of: {', '.join(KIND_MODULES)}",
        )
    return importlib.import_module(module).KIND

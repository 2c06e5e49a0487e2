"""The one way a kind imports a cloud SDK: lazily, with the pip extra that installs it.

``cfw --help`` and every kind's config, translate and explain work without any cloud SDK;
a client module that needs one calls :func:`require` at import, so that a missing package
becomes one line naming the extra (``pip install 'cfw[azure]'``) instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from cfw.core.errors import missing_sdk


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` (an SDK's), or raise the install hint for ``extra``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_sdk(exc.name or module, extra) from exc


def load(path: str, extra: str) -> Any:
    """``package.module:attribute`` of cfw, whose SDK imports may be missing."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("cfw"):
            raise missing_sdk(exc.name, extra) from exc
        raise
    return getattr(module, attr)

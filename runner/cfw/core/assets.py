"""Where the Terraform modules, Jinja templates and example configs are.

In a wheel they ship inside the package (``cfw/_assets/``); in a source checkout or an
editable install they are the repository's top-level directories.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def assets_root() -> Path:
    bundled = _PACKAGE / "_assets"
    if (bundled / "templates").is_dir():
        return bundled
    checkout = _PACKAGE.parent.parent  # runner/cfw -> repository root
    if (checkout / "templates").is_dir():
        return checkout
    raise RuntimeError(f"cfw's templates are missing (looked in {bundled} and {checkout})")


def modules_dir() -> Path:
    return assets_root() / "modules"


def templates_dir() -> Path:
    return assets_root() / "templates"


def examples_dir() -> Path:
    return assets_root() / "examples"


def example_environments_dir() -> Path:
    return assets_root() / "environments"

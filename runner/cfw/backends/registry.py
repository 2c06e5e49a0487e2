"""The registry of kinds, and of environments: which kinds exist, and the validated config
of an environment (its file, its saved record, or a kind's defaults).

Kinds are found by name and imported only when asked for, so that a command pays for the
kinds it uses; each kind lives in its own package, independent of the others. The config
models (pydantic) are imported on the first resolve too: `cfw --help` names the kinds
without them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfw.core.checks import shorten
from cfw.core.errors import UserError
from cfw.core.state import EnvState

if TYPE_CHECKING:
    from cfw.backends.kind import Kind
    from cfw.core.config import EnvConfig

KIND_MODULES = {
    "local": "cfw.backends.local.kind",
    "gke": "cfw.backends.gke.kind",
    "tibanna": "cfw.backends.tibanna.kind",
    "tes": "cfw.backends.tes.kind",
    "azure-batch": "cfw.backends.azure_batch.kind",
    "google-batch": "cfw.backends.google_batch.kind",
    "kubernetes": "cfw.backends.kubernetes.kind",
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


ENV_DIR = "environments"


@dataclass
class Resolved:
    name: str
    kind: Kind
    config: EnvConfig
    source: str  # where the config came from, for messages
    path: Path | None  # the config file, if there is one


def config_path(project: Path, name: str) -> Path:
    return Path(project) / ENV_DIR / f"{name}.yaml"


def check_name(name: str) -> None:
    from cfw.core.config import NAME_RE

    if not NAME_RE.match(name):
        raise UserError(
            f"{shorten(name)} is not a valid environment name",
            "use 1-20 lowercase letters, digits and '-', starting with a letter",
        )


def resolve(
    project: Path,
    name: str,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    prefer_saved: bool = False,
) -> Resolved:
    """The validated config of environment ``name``.

    Order: ``environments/NAME.yaml``; else the config saved when it came up; else, when
    NAME is a kind, that kind's defaults plus the usual environment variables. With
    ``prefer_saved`` the saved config wins (what `down` must destroy is what `up` made).
    """
    from cfw.core.config import NAME_RE, read_yaml, set_dotted, validate

    environ = os.environ if environ is None else environ
    check_name(name)
    path = config_path(project, name)
    saved = EnvState(project, name).meta()
    data: dict[str, Any]
    if saved and (prefer_saved or not path.exists()):
        data, source, file = dict(saved.config), f"saved config of {name}", None
    elif path.exists():
        source = str(path.relative_to(project))
        data, file = read_yaml(path, source), path
    elif name in kind_names():
        data = {"kind": name, **get_kind(name).defaults(environ)}
        source, file = f"defaults of kind {name}", None
    else:
        raise UserError(
            f"no environment named {name!r} ({path.relative_to(project)} does not exist)",
            f"create it with `cfw init KIND --name {name}`, or use a kind name: "
            + ", ".join(kind_names()),
        )
    for assignment in overrides:
        set_dotted(data, assignment)
    given = data.get("name")
    if given not in (None, name):
        if not isinstance(given, str) or not NAME_RE.match(given):
            raise UserError(
                f"{source}: field 'name': {shorten(given)} is not a valid environment name "
                "(1-20 lowercase letters, digits and '-', starting with a letter)",
                f"set name: {name}, or remove the name: line",
            )
        raise UserError(
            f"{source}: field 'name' is {given!r} but the file is named {name!r}",
            f"rename the file to {given}.yaml or set name: {name}",
        )
    if "kind" not in data:
        raise UserError(
            f"{source}: field 'kind' is required but missing",
            "add kind: followed by one of " + ", ".join(kind_names()),
        )
    kind_name = data["kind"]
    if not isinstance(kind_name, str) or kind_name not in kind_names():
        raise UserError(
            f"{source}: field 'kind': {shorten(kind_name)} is not allowed",
            "expected one of " + ", ".join(kind_names()),
        )
    kind = get_kind(kind_name)
    data["name"] = name
    config = validate(kind.config_model, data, source)
    return Resolved(name=name, kind=kind, config=config, source=source, path=file)


def dump_config(config: EnvConfig, minimal: bool = False) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude_none=True, exclude_defaults=minimal)
    return {"kind": config.kind, **data} if minimal else data


def write_config(project: Path, resolved: Resolved) -> Path:
    """Write the resolved config to environments/NAME.yaml so the run is reproducible."""
    path = config_path(project, resolved.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    body = yaml.safe_dump(dump_config(resolved.config, minimal=True), sort_keys=False)
    path.write_text(
        f"# environment {resolved.name} (kind {resolved.kind.name}), "
        f"resolved by cfw from {resolved.source}\n{body}"
    )
    resolved.path, resolved.source = path, str(path.relative_to(project))
    return path

"""Which kubeconfig files and context kind `kubernetes` uses, as kubectl picks them: KUBECONFIG
(one or more files, ':'-separated) or ~/.kube/config, merged first-wins; the config's
context, else the current one. Reads the files only (no SDK, no network), so that a wrong
context is named with the ones there are before anything connects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.core.errors import UserError

SETUP_HINT = (
    "point KUBECONFIG at your cluster's kubeconfig (`aws eks update-kubeconfig`, "
    "`az aks get-credentials`, `gcloud container clusters get-credentials`, or your admins')"
)


@dataclass(frozen=True)
class Kubeconfig:
    files: tuple[Path, ...]
    contexts: tuple[str, ...]
    current: str | None

    @property
    def path(self) -> str:
        return os.pathsep.join(str(f) for f in self.files)


def kubeconfig_paths(environ: Mapping[str, str]) -> list[Path]:
    """The files kubectl reads: KUBECONFIG's, else ~/.kube/config."""
    given = environ.get("KUBECONFIG")
    if given:
        return [Path(p).expanduser() for p in given.split(os.pathsep) if p]
    home = environ.get("HOME")
    return [Path(home) / ".kube" / "config" if home else Path("~/.kube/config").expanduser()]


def read_kubeconfig(environ: Mapping[str, str]) -> Kubeconfig:
    """The contexts of the kubeconfig files, merged as kubectl merges them (first wins)."""
    paths = kubeconfig_paths(environ)
    files = tuple(p for p in paths if p.is_file())
    if not files:
        shown = os.pathsep.join(str(p) for p in paths)
        raise UserError(f"no kubeconfig found ({shown} does not exist)", SETUP_HINT)
    contexts: list[str] = []
    current = None
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"kubeconfig {path} cannot be read: {exc}", SETUP_HINT) from exc
        if not isinstance(data, dict):
            raise UserError(f"kubeconfig {path} is not a kubeconfig", SETUP_HINT)
        for context in data.get("contexts") or []:
            name = (context or {}).get("name")
            if name and name not in contexts:
                contexts.append(name)
        current = current or data.get("current-context") or None
    return Kubeconfig(files, tuple(contexts), current)


def context_of(config: KubernetesConfig, kubeconfig: Kubeconfig) -> str:
    """The context to use: the config's, else the current one; it must exist."""
    wanted = config.context or kubeconfig.current
    listed = ", ".join(kubeconfig.contexts) or "none"
    if not wanted:
        raise UserError(
            f"kubeconfig {kubeconfig.path} has no current context",
            f"set context: in the environment's config (contexts: {listed})",
        )
    if wanted not in kubeconfig.contexts:
        where = "context" if config.context else "current-context"
        raise UserError(
            f"{where} {wanted!r} is not in kubeconfig {kubeconfig.path}",
            f"use one of: {listed}",
        )
    return wanted

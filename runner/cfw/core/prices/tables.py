"""The price tables: the ones shipped in ``data/``, and refreshed ones in a user directory.

A cloud's table is a stack of layers, newest first: a table ``cfw prices --refresh`` wrote
(``$CFW_PRICES_DIR``, else ``$XDG_CACHE_HOME/cfw/prices``, else ``~/.cache/cfw/prices``)
when it is at least as new as the shipped one, then the shipped table. A lookup takes an
entry from the first layer that has it, so a refreshed table that lacks, say, spot prices
still gets them (with their own, older date) from the shipped one. Tables load on first
use, once; :func:`reload` forgets them (after a refresh, or in tests).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

CLOUDS = ("aws", "gcp", "azure")
ALIASES = {"google": "gcp", "gce": "gcp", "ec2": "aws", "amazon": "aws"}
HOURS_PER_MONTH = 730  # the month AWS, Google and Azure price monthly rates by


@dataclass(frozen=True)
class Layer:
    data: dict[str, Any]
    origin: str  # "shipped", or the path of a refreshed table

    @property
    def as_of(self) -> str:
        return self.data["as_of"]

    @property
    def source(self) -> str:
        return self.data["source"]


@dataclass(frozen=True)
class Table:
    cloud: str
    layers: tuple[Layer, ...]  # newest first; the shipped table is last
    ignored: tuple[str, ...] = field(default=())  # refreshed tables not used, and why

    @property
    def as_of(self) -> str:
        return self.layers[0].as_of

    @property
    def shipped(self) -> Layer:
        return self.layers[-1]

    @property
    def regions(self) -> list[str]:
        seen: dict[str, None] = {}
        for layer in reversed(self.layers):
            seen.update(dict.fromkeys(layer.data.get("regions", ())))
        return list(seen)

    def find(self, *keys: str) -> tuple[Any, Layer] | None:
        """The value at ``keys`` in the newest layer that has it, and that layer."""
        for layer in self.layers:
            node: Any = layer.data
            for key in keys:
                if not isinstance(node, dict) or key not in node:
                    break
                node = node[key]
            else:
                return node, layer
        return None

    def merged(self) -> dict[str, Any]:
        """One table: every layer's entries, the newer ones winning."""
        result: dict[str, Any] = {}
        for layer in reversed(self.layers):
            result = _overlay(result, layer.data)
        return result


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _overlay(out[key], value)
        else:
            out[key] = value
    return out


def canonical_cloud(cloud: str) -> str:
    """``aws``, ``gcp`` or ``azure`` for a cloud's name; ValueError for another."""
    name = ALIASES.get(cloud.strip().lower(), cloud.strip().lower())
    if name not in CLOUDS:
        raise ValueError(f"{cloud!r} is not a cloud cfw has prices for ({', '.join(CLOUDS)})")
    return name


def user_dir(environ: dict[str, str] | None = None) -> Path:
    """Where refreshed tables go (and are read from)."""
    env = os.environ if environ is None else environ
    if env.get("CFW_PRICES_DIR"):
        return Path(env["CFW_PRICES_DIR"]).expanduser()
    cache_home = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser() / "cfw" / "prices"


def shipped_data(name: str) -> dict[str, Any]:
    """A data file of this package (``aws``, ``gcp``, ``azure``, ``kinds``), parsed."""
    return json.loads(files("cfw.core.prices").joinpath("data", f"{name}.json").read_text())


def table(cloud: str) -> Table:
    """The price table of ``cloud`` (``aws``, ``gcp``, ``azure``), loaded on first use."""
    return _table(canonical_cloud(cloud))


@cache
def _table(cloud: str) -> Table:
    shipped = Layer(shipped_data(cloud), "shipped")
    path = user_dir() / f"{cloud}.json"
    if not path.is_file():
        return Table(cloud, (shipped,))
    problem = None
    try:
        data = json.loads(path.read_text())
        problem = refreshed_problem(data, cloud)
    except (OSError, ValueError) as exc:
        problem = f"unreadable: {exc}"
    if problem is None and data["as_of"] < shipped.as_of:
        problem = f"as of {data['as_of']}, older than the shipped table ({shipped.as_of})"
    if problem is not None:
        return Table(cloud, (shipped,), (f"{path}: {problem}",))
    return Table(cloud, (Layer(data, str(path)), shipped))


def refreshed_problem(data: Any, cloud: str) -> str | None:
    """Why a refreshed table cannot be used, or None."""
    if not isinstance(data, dict) or data.get("cloud") != cloud:
        return f"not a price table of {cloud}"
    try:
        date.fromisoformat(str(data.get("as_of")))
    except ValueError:
        return "its as_of is not a date (YYYY-MM-DD)"
    if not isinstance(data.get("source"), str) or not isinstance(data.get("regions"), list):
        return "it names no source or no regions"
    return None


@cache
def kinds() -> dict[str, Any]:
    return shipped_data("kinds")["kinds"]


def reload() -> None:
    """Forget the loaded tables: the next lookup reads them again."""
    _table.cache_clear()
    kinds.cache_clear()

"""Terraform files read with python-hcl2: a module's blocks by name, its resources by address.

python-hcl2 keeps the quotes of strings (and block labels) in newer versions; `unq` drops
them, so the helpers give the same names with either version.
"""

from __future__ import annotations

from pathlib import Path


def unq(value):
    """A string without the quotes python-hcl2 keeps."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(path: Path) -> dict:
    import hcl2

    with path.open() as handle:
        return hcl2.load(handle)


def loads(text: str) -> dict:
    import hcl2

    return hcl2.loads(text)


def load_module(directory: Path) -> dict:
    """Every .tf file of a module, parsed and merged: {block type: [items...]}."""
    merged: dict = {}
    for path in sorted(directory.glob("*.tf")):
        for key, value in load(path).items():
            merged.setdefault(key, []).extend(value)
    return merged


def blocks(doc: dict, kind: str) -> dict[str, dict]:
    """{name: body} of `variable`/`output`/`module` blocks."""
    return {unq(k): v for item in doc.get(kind, []) for k, v in item.items()}


def resources(doc: dict, kinds=(("resource", ""), ("data", "data."))) -> dict[str, dict]:
    """{"type.name": body} of every resource (and data source, as "data.type.name")."""
    found = {}
    for kind, prefix in kinds:
        for item in doc.get(kind, []):
            for rtype, named in item.items():
                for name, body in named.items():
                    found[f"{prefix}{unq(rtype)}.{unq(name)}"] = body
    return found

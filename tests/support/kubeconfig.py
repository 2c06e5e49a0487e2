"""Kubeconfig files, as `aws eks update-kubeconfig` or `kubectl config` write them, for the
fake API server (support/fake_kube.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    server: str,
    token: str,
    contexts: tuple[str, ...] = ("lab",),
    current: str | None = "lab",
    ca_pem: bytes | None = None,
) -> Path:
    """One cluster and user; every context in ``contexts`` points at them."""
    cluster: dict = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    data: dict = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "runner", "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": "fake", "user": "runner"}} for name in contexts
        ],
        "preferences": {},
    }
    if current:
        data["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path

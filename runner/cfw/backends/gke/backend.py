"""The gke backend: the Kubernetes Job backend every Kubernetes kind shares
(cfw/backends/_kube/backend.py), on the GKE cluster cfw made, reached with the GKE API's
endpoint, CA and Google credentials."""

from __future__ import annotations

from cfw.backends._kube.backend import KubeBackend
from cfw.backends._kube.client import Kube
from cfw.backends.gke import cloud
from cfw.backends.gke.config import GkeConfig


class GkeBackend(KubeBackend[GkeConfig]):
    def connect(self) -> Kube:
        return cloud.connect(self.config, self.ctx.outputs)

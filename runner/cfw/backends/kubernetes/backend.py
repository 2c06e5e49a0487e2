"""The kubernetes backend: the Kubernetes Job backend every Kubernetes kind shares
(cfw/backends/_kube/backend.py), on the cluster of a kubeconfig context, with this
machine's storage credentials in the run's Secret (storage.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from cfw.backends._kube.backend import KubeBackend
from cfw.backends._kube.client import Kube
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.kubernetes import client
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.kubernetes.storage import credential_values


class KubernetesBackend(KubeBackend[KubernetesConfig]):
    def __init__(
        self,
        ctx: EnvContext[KubernetesConfig],
        kube: Kube | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ):
        self.environ = os.environ if environ is None else environ
        # before any job: a run whose jobs could not reach the storage stops here
        self.credentials = credential_values(ctx.config, self.environ)
        super().__init__(ctx, kube, clock)

    def connect(self) -> Kube:
        return client.connect(self.config, self.environ)

    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        return super().submit(spec, payload, {**secrets, **self.credentials})

"""The Kubernetes API of the cluster a kubeconfig context names, as kubectl would reach it:
KUBECONFIG (one or more files, ':'-separated) or ~/.kube/config, the config's context or
the current one, and whatever authentication the context uses (a token, client
certificates, or an exec plugin such as `aws eks get-token` or `kubelogin`). The job calls
themselves are the ones every Kubernetes kind shares (cfw/backends/_kube/client.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cfw.backends._kube.client import Kube
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.backends.kubernetes.kubeconfig import SETUP_HINT, context_of, read_kubeconfig
from cfw.backends.sdk import require
from cfw.core.errors import UserError

kube_config = require("kubernetes.config", "kubernetes")


def connect(config: KubernetesConfig, environ: Mapping[str, str] | None = None) -> Kube:
    """A client for the cluster of the config's kubeconfig context."""
    environ = os.environ if environ is None else environ
    kubeconfig = read_kubeconfig(environ)
    context = context_of(config, kubeconfig)
    try:
        api = kube_config.new_client_from_config(
            config_file=kubeconfig.path, context=context, persist_config=False
        )
    except (kube_config.ConfigException, OSError, ValueError) as exc:
        raise UserError(
            f"context {context!r} of kubeconfig {kubeconfig.path} cannot be used: {exc}",
            SETUP_HINT,
        ) from exc
    return Kube(api)

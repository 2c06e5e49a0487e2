"""Google Cloud's control plane for the google-batch kind: the credentials `cfw up` needs,
and what is left of an environment after `terraform destroy`. Not job calls: those are in
client.py, whose clients the leftover listing reuses."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from cfw.backends.google_batch.client import CLOUD_PLATFORM, Clients
from cfw.backends.google_batch.status import FINISHED
from cfw.backends.sdk import require
from cfw.core.errors import CfwError, UserError

auth = require("google.auth", "gcp")
auth_exceptions = require("google.auth.exceptions", "gcp")


def check_credentials(environ: Mapping[str, str]) -> None:
    """Application Default Credentials must exist (no network call is made)."""
    try:
        auth.default(scopes=[CLOUD_PLATFORM])
    except auth_exceptions.DefaultCredentialsError as exc:
        key_file = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if key_file:
            detail = " ".join(str(exc).split())
            raise UserError(
                f"GOOGLE_APPLICATION_CREDENTIALS={key_file} is not usable: {detail}",
                "point it at a service account key file, or unset it and run "
                "`gcloud auth application-default login`",
            ) from exc
        raise UserError(
            "no Google Cloud credentials found (Application Default Credentials)",
            "run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
        ) from exc


def leftovers(
    clients: Clients, env_id: str, known: Mapping[str, str], more: Mapping[str, str] | None = None
) -> list[str]:
    """What still carries the environment's id (or its names) after `terraform destroy`;
    MORE: further things to look for, what -> the URL a GET of which finds it (the guard's)."""
    left = [
        f"Batch job {job.name} ({job.status.state.name.lower()})"
        for job in clients.list_jobs(f'labels.cfw-id="{env_id}"')
        if job.status.state.name not in FINISHED
    ]
    left += [f"secret {name}" for name in clients.list_secrets(f"labels.cfw-id={env_id}")]
    bucket, account, network = known["bucket"], known["service_account"], known["network"]
    checks = {
        f"bucket {bucket}": f"https://storage.googleapis.com/storage/v1/b/{bucket}",
        f"service account {account}": (
            f"https://iam.googleapis.com/v1/projects/{clients.project}/serviceAccounts/{account}"
        ),
        f"network {network}": f"https://compute.googleapis.com/compute/v1/{network}",
        **(more or {}),
    }
    for what, url in checks.items():
        # a second opinion after a destroy Terraform reported done: a check that cannot be
        # made (no permission to read, say) does not hold the environment up
        with contextlib.suppress(CfwError):
            if clients.exists(url):
                left.append(what)
    return left

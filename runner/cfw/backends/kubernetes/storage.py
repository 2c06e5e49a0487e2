"""Storage of a `kubernetes` environment: the Snakemake storage plugin its prefix's scheme
names, the settings this machine's Snakemake gets, and the credentials jobs get.

With ``credentials: secret`` (the default) jobs get this machine's storage credentials, in
the run's Kubernetes Secret, never in a manifest:

- s3: the S3 plugin's own settings (SNAKEMAKE_STORAGE_S3_ACCESS_KEY, ... from AWS_*), which
  Snakemake hands every job;
- gcs: the service account key file GOOGLE_APPLICATION_CREDENTIALS names, mounted from
  the Secret, with GOOGLE_APPLICATION_CREDENTIALS pointing at it in the pod;
- az: the service principal the Azure plugin's EnvironmentCredential reads
  (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET).

With ``credentials: workload-identity`` jobs get none: the jobs' service account carries
the cloud identity (IRSA, Azure Workload Identity, GKE Workload Identity).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cfw.backends._aws import aws_region, s3_storage_env
from cfw.backends.base import StorageSpec
from cfw.backends.kubernetes.config import KubernetesConfig
from cfw.core.errors import UserError

CREDENTIALS_DIR = "/var/run/secrets/cfw"
GCS_KEY = "gcs-key.json"
GCS_KEY_VAR = "GOOGLE_APPLICATION_CREDENTIALS"
AZURE_CREDENTIAL_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
S3_KEYS = ("SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "SNAKEMAKE_STORAGE_S3_SECRET_KEY")
PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
PLUGIN_PACKAGES = {
    "s3": "snakemake-storage-plugin-s3",
    "gcs": "snakemake-storage-plugin-gcs",
    "azure": "snakemake-storage-plugin-azure",
}


@dataclass(frozen=True)
class JobCredentials:
    """What the run's Secret carries beyond what Snakemake hands jobs (its ``envvars()``)."""

    env: tuple[str, ...] = ()  # variables of this machine's environment, by name
    files: Mapping[str, str] = field(default_factory=dict)  # Secret key -> variable naming a file
    plain: Mapping[str, str] = field(default_factory=dict)  # pod variables with plain values


def job_credentials(config: KubernetesConfig) -> JobCredentials:
    """Which credentials jobs get, from the config alone (translate is pure)."""
    store = config.storage
    if store.credentials != "secret":
        return JobCredentials()
    if store.provider == "gcs":
        return JobCredentials(
            files={GCS_KEY: GCS_KEY_VAR}, plain={GCS_KEY_VAR: f"{CREDENTIALS_DIR}/{GCS_KEY}"}
        )
    if store.provider == "azure":
        return JobCredentials(env=AZURE_CREDENTIAL_ENV)
    return JobCredentials()  # s3: the plugin's own settings, through Snakemake


def credential_values(config: KubernetesConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The values of :func:`job_credentials` from this machine, for the run's Secret; a
    UserError when they are missing (the jobs could not reach the storage)."""
    store = config.storage
    if store.credentials != "secret":
        return {}
    fix = "or set storage.credentials: workload-identity if the jobs' service account has one"
    if store.provider == "s3":
        missing = [name for name in S3_KEYS if not environ.get(name)]
        if missing:
            raise UserError(
                "storage.credentials is secret but there are no S3 keys to give the jobs",
                f"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, {fix}",
            )
        return {}
    plan = job_credentials(config)
    values = {}
    for name in plan.env:
        if not environ.get(name):
            raise UserError(
                f"storage.credentials is secret but {name} is not set",
                f"set {', '.join(plan.env)} (a service principal with access to the "
                f"storage account), {fix}",
            )
        values[name] = environ[name]
    for key, variable in plan.files.items():
        path = environ.get(variable)
        if not path:
            raise UserError(
                f"storage.credentials is secret but {variable} names no key file",
                f"set {variable} to a service account key file, {fix}",
            )
        try:
            values[key] = Path(path).expanduser().read_text()
        except OSError as exc:
            raise UserError(
                f"{variable}={path} cannot be read: {exc.strerror}",
                f"point it at a key file, {fix}",
            ) from exc
    return values


def storage_spec(config: KubernetesConfig, environ: Mapping[str, str]) -> StorageSpec:
    """How this machine's Snakemake reaches the storage (its plugin reads the env)."""
    store = config.storage
    provider = store.provider
    if importlib.util.find_spec(f"snakemake_storage_plugin_{provider}") is None:
        raise UserError(
            f"the Snakemake storage plugin for {store.scheme}:// is not installed",
            f"install it with: pip install {PLUGIN_PACKAGES[provider]}",
        )
    env: dict[str, str] = {}
    if provider == "s3":
        env = s3_storage_env(
            environ,
            endpoint=store.endpoint_url,
            region=store.region or aws_region(environ),
            credentials=store.credentials == "secret",
        )
    elif provider == "gcs":
        project = store.project or next((environ[v] for v in PROJECT_VARS if environ.get(v)), None)
        if project:
            env["SNAKEMAKE_STORAGE_GCS_PROJECT"] = project
    else:
        account = store.account_name or environ.get("AZURE_STORAGE_ACCOUNT")
        if not account:
            raise UserError(
                "az:// storage needs the storage account's name",
                "set storage.account_name in the environment's config, or AZURE_STORAGE_ACCOUNT",
            )
        env["SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME"] = account
    return StorageSpec(provider=provider, prefix=store.prefix, env=env)

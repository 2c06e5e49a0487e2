"""Kind `google-batch` as the core sees it. Imports no Google SDK at import time: the
credential check and the leftover listing are in ``cloud``, imported by the hooks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfw.backends._google import guard_deploy
from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.google_batch.config import PROJECT_RE, GoogleBatchConfig
from cfw.backends.kind import Identity, Kind
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice
from cfw.core.rootmodule import ModuleCall, RootSpec

PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
GUARD_ADAPTER = "cfw.backends.google_batch.guard"  # zipped into the guard's function


def resource_name(env_id: str) -> str:
    """Base name of the environment's resources: its id, without "goog" (GCS refuses it)."""
    return re.sub(r"goog(le)?", "gcp", env_id)


def names(config: GoogleBatchConfig, env_id: str) -> dict[str, str]:
    """The names the module gives its resources (see modules/google-batch/main.tf)."""
    base = resource_name(env_id)
    project = config.project or "PROJECT_ID"
    return {
        "bucket": config.bucket or f"{base}-data",
        "service_account": f"{base}@{project}.iam.gserviceaccount.com",
        "network": f"projects/{project}/global/networks/{base}",
        "subnetwork": f"projects/{project}/regions/{config.region}/subnetworks/{base}",
        "network_tag": base,
        "secret_prefix": f"{base}-",
    }


class GoogleBatchKind(Kind[GoogleBatchConfig]):
    name = "google-batch"
    label = "Google Batch"
    summary = "Google Batch (successor of Cloud Life Sciences): each job a Batch job on its own VM"
    config_model = GoogleBatchConfig
    root = RootSpec(
        modules=(
            ModuleCall("google-batch", "google_batch", renames={"name": "var.resource_name"}),
        ),
        providers=("google",),
    )
    capabilities = Capabilities(gpu=True, spot=True, machine_types=True)
    backend_path = "cfw.backends.google_batch.backend:GoogleBatchBackend"
    translate_path = "cfw.backends.google_batch.translate:translate"
    submit_path = "cfw.backends.google_batch.translate:build_request"  # no JSON per job
    extra = "gcp"
    default_jobs = 100

    # -- config -----------------------------------------------------------------------------
    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        project = next((environ[v] for v in PROJECT_VARS if environ.get(v)), None)
        return {"project": project} if project else {}

    def preflight(self, config: GoogleBatchConfig, environ: Mapping[str, str]) -> None:
        """Project and Application Default Credentials, checked before anything is made.

        A config without a project takes GOOGLE_CLOUD_PROJECT (the resolved value is what
        `up` records)."""
        if config.project is None:
            config.project = self.defaults(environ).get("project")
        if config.project is None:
            raise UserError(
                "no Google Cloud project is set for kind google-batch",
                "set project: in the environment's config, pass --project PROJECT_ID, "
                "or export GOOGLE_CLOUD_PROJECT",
            )
        if not PROJECT_RE.match(config.project):
            raise UserError(
                f"{config.project!r} is not a Google Cloud project id",
                "use the project id (6-30 lowercase letters, digits or '-')",
            )
        from cfw.backends.google_batch import cloud

        cloud.check_credentials(environ)

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: GoogleBatchConfig) -> RootSpec:
        """What Batch jobs need, and the guard (modules/gcp-guard) unless guard.enabled is
        false."""
        return guard_deploy.with_guard(self.root, config)

    def render_files(self, config: GoogleBatchConfig, outdir: Path) -> None:
        """The guard function's zip, in guard/ next to the root module."""
        guard_deploy.render(config, GUARD_ADAPTER, outdir)

    def tfvars(self, config: GoogleBatchConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        if config.project is None:
            raise UserError(
                "no Google Cloud project is set for kind google-batch",
                "set project: in the environment's config, or --set project=PROJECT_ID",
            )
        labels = ident.labels(config.labels)
        base = resource_name(ident.env_id)
        return {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": labels,
            "project": config.project,
            "region": config.region,
            "resource_name": base,
            "bucket_name": config.bucket,
            "bucket_retention_days": config.bucket_retention_days,
            "data_buckets": list(config.data_buckets),
            "subnet_cidr": config.subnet_cidr,
            "enable_nat": not config.external_ip,
            "allow_ssh_from_iap": config.allow_ssh_from_iap,
            **guard_deploy.tfvars(config, labels, GUARD_ADAPTER, base),
        }

    def output_placeholders(
        self, config: GoogleBatchConfig, ident: Identity | None
    ) -> dict[str, Any]:
        """Before `up`: the names the module will give (derived from the environment's id;
        ENV_ID before the id exists)."""
        env_id = ident.env_id if ident else "ENV_ID"
        labels = (
            ident.labels(config.labels)
            if ident
            else {
                **config.labels,
                "cfw-env": config.name or self.name,
                "cfw-id": env_id,
                "cfw-expires-at": "EXPIRES_AT",
            }
        )
        return {
            "project": config.project or "PROJECT_ID",
            "region": config.region,
            **names(config, env_id),
            "cfw_labels": labels,
        }

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: GoogleBatchConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        """Sources and files in the environment's bucket, one folder per workflow directory."""
        folder = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(workdir).name) or "workflow"
        return StorageSpec(
            provider="gcs",
            prefix=f"gs://{outputs['bucket']}/{folder}",
            env={"SNAKEMAKE_STORAGE_GCS_PROJECT": str(outputs["project"])},
        )

    def price(self, spec: JobSpec, ctx: EnvContext[GoogleBatchConfig]) -> JobPrice:
        """The whole VM Batch creates for the job."""
        from cfw.backends.google_batch import price

        return price.job_price(spec, ctx)

    def leftovers(
        self,
        config: GoogleBatchConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        from cfw.backends.google_batch.client import Clients
        from cfw.backends.google_batch.cloud import leftovers

        known = {**names(config, ident.env_id), **{k: v for k, v in outputs.items() if v}}
        base = resource_name(ident.env_id)
        guard = guard_deploy.leftover_urls(
            str(config.project), config.region, f"{base}-guard", base
        )
        clients = Clients(str(config.project), config.region)
        return leftovers(clients, ident.env_id, known, guard)

    # -- the guard: heartbeats in the bucket, jobs by the environment's label --------------
    def heartbeat_store(
        self, ctx: EnvContext[GoogleBatchConfig], environ: Mapping[str, str]
    ) -> tuple[Any, str]:
        """The environment's bucket, at its root: `gs://<bucket>/.cfw/runs/` (not the run's
        per-workflow folder, so that every working directory sees every run)."""
        from cfw.backends.google_batch.store import gcs_store

        project = str(ctx.outputs.get("project") or ctx.config.project)
        bucket = ctx.outputs.get("bucket") or names(ctx.config, ctx.env_id)["bucket"]
        return gcs_store(project, str(bucket)), ""

    def guard_adapter(self, ctx: EnvContext[GoogleBatchConfig], environ: Mapping[str, str]):
        from cfw.backends.google_batch import guard

        placed = self.heartbeat_store(ctx, environ)
        return guard.adapter_for(ctx.config, dict(ctx.outputs), ctx.env_id, placed)

    def status_details(
        self, config: GoogleBatchConfig, outputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Batch jobs of this environment by state (one list call)."""
        from cfw.backends.google_batch.client import Clients

        labels = outputs.get("cfw_labels") or {}
        env_id = labels.get("cfw-id")
        if not env_id:
            return {}
        counts = Clients(str(config.project), config.region).count_jobs(env_id)
        return {
            "batch jobs": ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none"
        }


KIND = GoogleBatchKind()

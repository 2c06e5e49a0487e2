"""Kind `tes` as the core sees it: a Funnel server on AWS that `up` provisions, or an
existing TES server given by URL (then `up` records it and `down` forgets it)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfw.backends._aws import aws_region, endpoint_url, guard_deploy, s3_storage_env, session
from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.kind import Identity, Kind
from cfw.backends.tes.config import TesConfig
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice
from cfw.core.render import header, jinja_env, render_text
from cfw.core.rootmodule import ModuleCall, RootSpec

HTTPS_PORT = 443
GUARD_ADAPTER = "cfw.backends.tes.guard"  # zipped into the guard's Lambda
GUARD_SUBDIR = "lambda"  # of the rendered root module: the guard's zip
FUNNEL_ROOT = RootSpec(
    modules=(
        ModuleCall(
            "aws-funnel", "funnel", renames={"name": "var.resource_prefix", "tags": "var.labels"}
        ),
    ),
    providers=("aws",),
    variables={"region": "AWS region."},
)
URL_ROOT = RootSpec(  # an existing server: the state records it, nothing is created
    variables={
        "url": "Base URL of the existing TES server.",
        "storage_prefix": "Where Snakemake keeps sources and files.",
    },
    outputs={
        "tes_url": ("Base URL of the TES API.", "var.url"),
        "storage_prefix": ("Where Snakemake keeps sources and files.", "var.storage_prefix"),
    },
)


def resource_prefix(env_id: str) -> str:
    return f"cfw-{env_id}"


def funnel_names(config: TesConfig, prefix: str) -> dict[str, Any]:
    """Names of what modules/aws-funnel creates, as the server's config must spell them."""
    ssm = config.credentials_store == "ssm"
    return {
        "table_basename": f"{prefix}-funnel",
        "job_queue": f"{prefix}-queue",
        "job_definition": f"{prefix}-worker",
        "secret_names": {u: f"{'/' if ssm else ''}{prefix}/funnel/users/{u}" for u in config.users},
        "tls_parameter": f"/{prefix}/funnel/tls-certificate",
    }


def region_of(config: TesConfig, environ: Mapping[str, str]) -> str | None:
    """The config's region, else the one the environment names (AWS_REGION), as the kind's
    defaults take it when there is no config file."""
    return config.region or aws_region(environ)


def render_user_data(config: TesConfig, ident: Identity) -> str:
    """The server's cloud-init with Funnel's config, its systemd unit, the TLS proxy and the
    setup script (templates/tes/); no password is in any of them."""
    prefix = resource_prefix(ident.env_id)
    names = funnel_names(config, prefix)
    values = {
        "env_name": ident.name,
        "env_id": ident.env_id,
        "region": region_of(config, os.environ),
        "users": config.users,
        "store": config.credentials_store,
        "https_port": HTTPS_PORT,
        "funnel_version": config.funnel_version,
        "table_basename": names["table_basename"],
        "job_queue": names["job_queue"],
        "job_definition": names["job_definition"],
        "secret_names": names["secret_names"],
        "tls_parameter": names["tls_parameter"],
    }
    parts = {
        "funnel_config": render_text("tes/funnel.config.yml.j2", **values),
        "funnel_service": render_text("tes/funnel.service.j2", **values),
        "nginx_config": render_text("tes/nginx.conf.j2", **values),
        "setup_script": render_text("tes/funnel-setup.py.j2", **values),
    }
    template = "tes/cloud-init.yaml.j2"
    body = jinja_env().get_template(template).render(**values, **parts)
    # cloud-init wants #cloud-config on the very first line, before cfw's header
    return "#cloud-config\n" + header(template) + body


class TesKind(Kind[TesConfig]):
    name = "tes"
    label = "TES"
    summary = "GA4GH TES: a Funnel server on AWS (EC2, AWS Batch, DynamoDB, S3), or a TES URL"
    config_model = TesConfig
    root = FUNNEL_ROOT
    capabilities = Capabilities(
        # TES resources have `preemptible`; GPUs and machine types go to backend_parameters,
        # which a server may honour (TESK, TES on Azure) or ignore (Funnel)
        gpu=True,
        spot=True,
        machine_types=True,
    )
    backend_path = "cfw.backends.tes.backend:TesBackend"
    translate_path = "cfw.backends.tes.translate:translate"
    extra = "tes"
    default_jobs = 100

    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        region = aws_region(environ)
        return {"region": region} if region else {}

    def preflight(self, config: TesConfig, environ: Mapping[str, str]) -> None:
        if config.provision and not region_of(config, environ):
            raise UserError(
                "kind tes needs an AWS region to provision the Funnel server",
                "set region: in the environment's config (or AWS_REGION)",
            )

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: TesConfig) -> RootSpec:
        """The Funnel server and its guard (modules/aws-guard, unless guard.enabled is
        false), or only the record of an existing server (no cloud-side guard: nothing of
        cfw's bills there; `cfw guard NAME --once` and `cfw cancel` reach its tasks)."""
        return guard_deploy.with_guard(FUNNEL_ROOT, config) if config.provision else URL_ROOT

    def render_files(self, config: TesConfig, outdir: Path) -> None:
        """The guard's Lambda zip, in lambda/ next to the root module."""
        if config.provision:
            guard_deploy.render(config, GUARD_ADAPTER, Path(outdir) / GUARD_SUBDIR)

    def tfvars(self, config: TesConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        common = {"name": ident.name, "env_id": ident.env_id, "labels": ident.labels(config.labels)}
        if not config.provision:
            return {**common, "url": config.url, "storage_prefix": config.storage.prefix}
        return {
            **common,
            "region": region_of(config, os.environ),
            "resource_prefix": resource_prefix(ident.env_id),
            "allowed_cidrs": config.allowed_cidrs,
            "instance_type": config.instance_type,
            "ami_id": config.ami_id,
            "vpc_id": config.vpc_id,
            "subnet_ids": config.subnet_ids,
            "users": config.users,
            "credentials_store": config.credentials_store,
            "batch": config.batch.model_dump(),
            "object_expiration_days": config.object_expiration_days,
            "user_data": render_user_data(config, ident),
            **guard_deploy.tfvars(
                config,
                common["labels"],
                GUARD_ADAPTER,
                f"{GUARD_SUBDIR}/{guard_deploy.guard_zip.FILENAME}",
            ),
        }

    def output_placeholders(self, config: TesConfig, ident: Identity | None) -> dict[str, Any]:
        if not config.provision:
            return {"tes_url": config.url, "storage_prefix": config.storage.prefix}
        prefix = resource_prefix(ident.env_id if ident else "adhoc")
        names = funnel_names(config, prefix)
        return {
            "tes_url": "https://funnel-server-known-after-up.invalid",
            "storage_prefix": f"s3://{prefix}-data-known-after-up/cfw",
            "region": region_of(config, os.environ),
            "basic_auth_user": config.users[0],
            "basic_auth_store": config.credentials_store,
            "basic_auth_names": names["secret_names"],
            "tls_certificate_parameter": names["tls_parameter"],
        }

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: TesConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        """S3 through Snakemake's s3 plugin. This machine's Snakemake finds credentials the
        usual way (AWS_* variables, profile, SSO); jobs get them only with
        storage.pass_credentials (see translate.py), else through the compute's role."""
        prefix = config.storage.prefix or outputs.get("storage_prefix")
        if not prefix:
            raise UserError(
                "the environment has no storage prefix recorded", "run `cfw up` again to record it"
            )
        region = config.region or outputs.get("region") or aws_region(environ)
        env = s3_storage_env(
            environ,
            endpoint=config.storage.endpoint_url,
            region=region,
            credentials=config.storage.pass_credentials,
        )
        if config.storage.pass_credentials and "SNAKEMAKE_STORAGE_S3_ACCESS_KEY" not in env:
            raise UserError(
                "storage.pass_credentials is on but there are no credentials to pass",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        return StorageSpec(provider="s3", prefix=str(prefix), env=env)

    def price(self, spec: JobSpec, ctx: EnvContext[TesConfig]) -> JobPrice:
        """The AWS Batch instance of the provisioned Funnel, whole; none for a TES URL."""
        from cfw.backends.tes import price

        region = self.price_region(ctx.config) or ctx.outputs.get("region")
        return price.job_price(spec, ctx, region)

    def price_region(self, config: TesConfig) -> str | None:
        return region_of(config, os.environ)

    # -- teardown and status ----------------------------------------------------------------
    def leftovers(
        self,
        config: TesConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        if not config.provision:
            return []  # nothing was created in any cloud
        from cfw.backends.tes import cloud

        region = config.region or outputs.get("region") or aws_region(environ)
        return cloud.leftovers(region, ident.env_id, resource_prefix(ident.env_id), environ)

    def remove_leftovers(
        self,
        config: TesConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
        say: Callable[[str], None],
    ) -> list[str]:
        if not config.provision:
            return []
        from cfw.backends.tes import cloud

        region = config.region or outputs.get("region") or aws_region(environ)
        return cloud.remove_leftovers(
            region, ident.env_id, resource_prefix(ident.env_id), environ, say
        )

    # -- the guard ----------------------------------------------------------------------------
    def heartbeat_store(
        self, ctx: EnvContext[TesConfig], environ: Mapping[str, str]
    ) -> tuple[Any, str]:
        """The storage prefix's bucket: `<prefix>/.cfw/runs/`, where the guard's Lambda
        reads them on the provisioned Funnel."""
        from cfw.backends._aws.store import S3Store, split_url

        prefix = ctx.config.storage.prefix or ctx.outputs.get("storage_prefix")
        bucket, key = split_url(str(prefix))
        s3 = self._session(ctx, environ).client(
            "s3", endpoint_url=endpoint_url(environ, ctx.config.storage.endpoint_url)
        )
        return S3Store(s3, bucket), key

    def guard_adapter(self, ctx: EnvContext[TesConfig], environ: Mapping[str, str]) -> Any:
        """The provisioned Funnel's Batch jobs, server and compute environment; or an
        existing server's tasks (by the cfw-id tag, with the run's TES credentials)."""
        from cfw.backends.tes import guard

        return guard.adapter_for(
            ctx.config,
            ctx.outputs,
            self._session(ctx, environ),
            store=self.heartbeat_store(ctx, environ),
            env_id=ctx.env_id,
            environ=environ,
            state_dir=ctx.state_dir,
        )

    def _session(self, ctx: EnvContext[TesConfig], environ: Mapping[str, str]) -> Any:
        region = ctx.config.region or ctx.outputs.get("region") or aws_region(environ)
        return session(region, environ, extra="tes")

    def status_details(self, config: TesConfig, outputs: Mapping[str, Any]) -> dict[str, Any]:
        from cfw.backends.tes.client import describe_server

        return describe_server(config, outputs)


KIND = TesKind()

"""Kind `tibanna` as the core sees it. Imports no AWS SDK at import time."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfw.backends._aws import aws_region, guard_deploy, s3_storage_env, session
from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.kind import Identity, Kind, Users
from cfw.backends.tibanna.config import TibannaConfig
from cfw.core.errors import UserError, WorkFailed
from cfw.core.prices import JobPrice
from cfw.core.rootmodule import ModuleCall, RootSpec


def region_of(config: TibannaConfig, environ: Mapping[str, str]) -> str | None:
    return config.region or aws_region(environ)


def names(config: TibannaConfig, env_id: str) -> dict[str, str]:
    """The unicorn's names, derived from the environment's unique id unless configured."""
    return {
        "usergroup": config.usergroup or env_id,
        "data_bucket": config.data_bucket or f"cfw-{env_id}-data",
        "log_bucket": config.log_bucket or f"cfw-{env_id}-logs",
    }


TABLE_ADDRESS = "module.tibanna.aws_dynamodb_table.jobs[0]"  # in the rendered root module


def create_table(config: TibannaConfig, ident: Identity) -> bool:
    """Whether this environment's Terraform manages the tibanna-master table.

    Tibanna shares one table among all unicorns of an account and region (deploy_unicorn
    creates it when DescribeTable finds none). With ``auto``: create it when it does not
    exist, and keep managing it when it carries this environment's cfw-id (it made it), so
    every `up` and `down` of the environment decides the same; a table another environment
    or deploy_unicorn made is used by name, never changed or deleted."""
    if config.create_dynamodb_table != "auto":
        return config.create_dynamodb_table
    from cfw.backends.tibanna import cloud

    try:
        tags = cloud.table_tags(session(config.region, os.environ))
    except cloud.NoCredentialsError:
        # only `cfw render` gets here (preflight stops `up` and `plan` without credentials):
        # it renders what `up` would do in an account without the table
        return True
    except (cloud.ClientError, cloud.BotoCoreError) as exc:
        raise UserError(
            f"could not tell whether the {cloud.MASTER_TABLE} table exists: {exc}",
            "give AWS credentials, or set create_dynamodb_table: true or false",
        ) from exc
    return tags is None or tags.get("cfw-id") == ident.env_id


LAMBDA_SUBDIR = "lambda"  # of the rendered root module
GUARD_ADAPTER = "cfw.backends.tibanna.guard"  # zipped into the guard's Lambda


def _lambda_dir(config: TibannaConfig) -> Path | None:
    return Path(config.lambda_dir).expanduser().absolute() if config.lambda_dir else None


def _lambda_filename(config: TibannaConfig, function: str) -> str:
    """Relative to the root module by default; an explicit lambda_dir is used as given."""
    where = _lambda_dir(config)
    return str(where / f"{function}.zip") if where else f"{LAMBDA_SUBDIR}/{function}.zip"


class TibannaKind(Kind[TibannaConfig]):
    name = "tibanna"
    label = "Tibanna"
    summary = "a Tibanna unicorn on AWS: IAM, Lambdas, step function, buckets; a job per execution"
    config_model = TibannaConfig
    root = RootSpec(
        modules=(
            ModuleCall(
                "aws-tibanna",
                "tibanna",
                renames={
                    "data_bucket_name": "var.data_bucket",
                    "log_bucket_name": "var.log_bucket",
                    "lambda_packages": "local.lambda_packages",  # paths made absolute
                    "tags": "var.labels",
                },
            ),
        ),
        providers=("aws",),
        variables={
            "region": "AWS region (null: the provider's usual AWS_REGION / profile lookup)."
        },
    )
    capabilities = Capabilities(spot=True, machine_types=True, users=True)
    backend_path = "cfw.backends.tibanna.backend:TibannaBackend"
    translate_path = "cfw.backends.tibanna.translate:translate"
    extra = "aws"
    default_jobs = 100

    # -- config -----------------------------------------------------------------------------
    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        region = aws_region(environ)
        return {"region": region} if region else {}

    def preflight(self, config: TibannaConfig, environ: Mapping[str, str]) -> None:
        if not region_of(config, environ):
            raise UserError(
                "the tibanna environment has no AWS region",
                "set region: in its config, or AWS_REGION",
            )
        from cfw.backends.tibanna import cloud

        cloud.require_credentials(environ)
        from cfw.backends.tibanna.lambda_zip import tibanna_version

        tibanna_version()  # the Lambdas are built from the installed package

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: TibannaConfig) -> RootSpec:
        """The unicorn, and its guard (modules/aws-guard) unless guard.enabled is false."""
        return guard_deploy.with_guard(self.root, config)

    def tfvars(self, config: TibannaConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        """The zips' paths are relative to the rendered root module (which joins them to
        path.module), so the same inputs plan the same from any directory — a shared
        state used from another checkout does not redeploy the Lambdas."""
        from cfw.backends.tibanna import lambda_zip

        return {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": ident.labels(config.labels),
            "region": config.region,
            **names(config, ident.env_id),
            "extra_bucket_names": list(config.extra_buckets),
            "lambda_packages": {
                fn: {"filename": _lambda_filename(config, fn), "source_code_hash": digest}
                for fn, digest in lambda_zip.digests().items()
            },
            "tibanna_version": lambda_zip.tibanna_version(),
            "cost_updater": config.cost_updater,
            "create_dynamodb_table": create_table(config, ident),
            "log_retention_days": config.log_retention_days,
            "log_object_expiration_days": config.log_expiration_days,
            "awsf_repo": {"name": config.awsf_repo, "branch": config.awsf_branch},
            **guard_deploy.tfvars(
                config,
                ident.labels(config.labels),
                GUARD_ADAPTER,
                _lambda_filename(config, guard_deploy.guard_zip.FILENAME.removesuffix(".zip")),
            ),
        }

    def render_files(self, config: TibannaConfig, outdir: Path) -> None:
        """The three Lambda zips and the guard's, in lambda/ next to the root module (or
        lambda_dir)."""
        from cfw.backends.tibanna import lambda_zip

        where = _lambda_dir(config) or Path(outdir) / LAMBDA_SUBDIR
        lambda_zip.build_all(where)
        guard_deploy.render(config, GUARD_ADAPTER, where)

    def adopt_after_failure(self, config: TibannaConfig, error: str) -> str | None:
        """Two `up`s at once both found no tibanna-master table and both created it: the
        one that lost adopts the winner's (create_table now finds it, with another id)."""
        from cfw.backends.tibanna import cloud

        lost_race = "ResourceInUseException" in error or (
            cloud.MASTER_TABLE in error and "already exists" in error.lower()
        )
        if config.create_dynamodb_table != "auto" or not lost_race:
            return None
        return (
            f"the {cloud.MASTER_TABLE} table was created meanwhile (by another environment "
            "or deploy_unicorn); using it instead"
        )

    def output_placeholders(self, config: TibannaConfig, ident: Identity | None) -> dict[str, Any]:
        env_id = ident.env_id if ident else "<env-id>"
        known = names(config, env_id)
        region = config.region or "<region>"
        sfn = f"tibanna_unicorn_{known['usergroup']}"
        return {
            **known,
            "state_machine_name": sfn,
            "state_machine_arn": f"arn:aws:states:{region}:<account>:stateMachine:{sfn}",
            "user_group": f"tibanna_{known['usergroup']}",
            "region": region,
            "account_id": "<account>",
            "dynamodb_table": "tibanna-master",
        }

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: TibannaConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        """Sources and files go through the data bucket. This machine's Snakemake uses the
        AWS credentials of the environment; jobs use their instance role."""
        region = region_of(config, environ) or outputs.get("region")
        env = s3_storage_env(environ, region=region)
        return StorageSpec(provider="s3", prefix=f"s3://{outputs['data_bucket']}/cfw", env=env)

    def price(self, spec: JobSpec, ctx: EnvContext[TibannaConfig]) -> JobPrice:
        """The whole instance Tibanna starts for the job."""
        from cfw.backends.tibanna import price

        return price.job_price(spec, ctx, self.price_region(ctx.config))

    def price_region(self, config: TibannaConfig) -> str | None:
        return region_of(config, os.environ)

    # -- teardown and status ----------------------------------------------------------------
    def before_destroy(
        self, config: TibannaConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """IAM refuses to delete a group with members: take the users out first."""
        group = outputs.get("user_group")
        if group:
            from cfw.backends.tibanna import cloud

            try:
                cloud.empty_group(session(config.region, environ), group)
            except (cloud.ClientError, cloud.BotoCoreError) as exc:
                raise WorkFailed(f"could not take the users out of {group}: {exc}") from exc

        self._delete_left_table(config, outputs, environ)

    def _delete_left_table(
        self, config: TibannaConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """The last unicorn to go deletes a table that another cfw environment made and left
        to it (tagged cfw-left-by); one that deploy_unicorn made is never deleted."""
        from cfw.backends.tibanna import cloud

        if outputs.get("dynamodb_table_created") or not outputs.get("state_machine_name"):
            return
        sess = session(config.region, environ)
        try:
            tags = cloud.table_tags(sess)
            left = bool(tags) and cloud.LEFT_BY in tags
            if left and not cloud.other_unicorns(sess, outputs["state_machine_name"]):
                cloud.delete_table(sess)
        except (cloud.ClientError, cloud.BotoCoreError) as exc:
            raise WorkFailed(f"could not check the {cloud.MASTER_TABLE} table: {exc}") from exc

    def kept_on_destroy(
        self, config: TibannaConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> dict[str, str]:
        """The table this environment made stays while other unicorns use it: its cfw-*
        tags are replaced by cfw-left-by, and the last unicorn to go deletes it."""
        if not outputs.get("dynamodb_table_created"):
            return {}
        from cfw.backends.tibanna import cloud

        sess = session(config.region, environ)
        try:
            others = cloud.other_unicorns(sess, outputs["state_machine_name"])
            if not others:
                return {}
            cloud.hand_over_table(sess, str(outputs.get("cfw_id") or ""))
        except (cloud.ClientError, cloud.BotoCoreError) as exc:
            raise WorkFailed(f"could not check the {cloud.MASTER_TABLE} table: {exc}") from exc
        return {
            TABLE_ADDRESS: f"the {cloud.MASTER_TABLE} table, which other unicorns use "
            f"({', '.join(others)})"
        }

    def leftovers(
        self,
        config: TibannaConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        from cfw.backends.tibanna import cloud

        known = names(config, ident.env_id)
        return cloud.leftovers(
            session(config.region, environ),
            ident.env_id,
            known["usergroup"],
            [known["data_bucket"], known["log_bucket"]],
        )

    def remove_leftovers(
        self,
        config: TibannaConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
        say: Callable[[str], None],
    ) -> list[str]:
        from cfw.backends.tibanna import cloud

        known = names(config, ident.env_id)
        return cloud.remove_leftovers(
            session(config.region, environ),
            ident.env_id,
            known["usergroup"],
            [known["data_bucket"], known["log_bucket"]],
            say,
        )

    # -- the guard ----------------------------------------------------------------------------
    def heartbeat_store(
        self, ctx: EnvContext[TibannaConfig], environ: Mapping[str, str]
    ) -> tuple[Any, str]:
        """The data bucket, under the storage prefix: `cfw/.cfw/runs/`, where the guard's
        Lambda reads them."""
        from cfw.backends._aws.store import S3Store
        from cfw.backends.tibanna.guard import STORE_SUBDIR

        s3 = session(region_of(ctx.config, environ), environ).client("s3")
        return S3Store(s3, ctx.outputs["data_bucket"]), STORE_SUBDIR

    def guard_adapter(self, ctx: EnvContext[TibannaConfig], environ: Mapping[str, str]) -> Any:
        """The unicorn's executions and their instances (cfw.backends.tibanna.guard)."""
        from cfw.backends.tibanna import guard

        return guard.adapter_for(
            ctx.config, ctx.outputs, session(region_of(ctx.config, environ), environ)
        )

    def status_details(self, config: TibannaConfig, outputs: Mapping[str, Any]) -> dict[str, Any]:
        from cfw.backends.tibanna import client

        sfn = session(config.region, os.environ).client("stepfunctions")
        running = client.count_running(sfn, outputs["state_machine_arn"])
        return {
            "state machine": outputs.get("state_machine_name"),
            "executions running": running,
            "log bucket": outputs.get("log_bucket"),
        }

    def users(
        self, config: TibannaConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> Users:
        from cfw.backends.tibanna import cloud

        return cloud.GroupUsers(session(config.region, environ), outputs["user_group"])


KIND = TibannaKind()

"""Kind `azure-batch` as the core sees it: config, Terraform values, storage, preflight.

No Azure SDK is imported here; credential checks, pool state and leftovers are Azure's
control plane, in ``cloud`` (imported inside the hooks that use it).
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfw.backends.azure_batch import guard_deploy
from cfw.backends.azure_batch.config import AzureBatchConfig, PoolConfig
from cfw.backends.base import Capabilities, EnvContext, JobSpec, StorageSpec
from cfw.backends.kind import Identity, Kind
from cfw.core.errors import UserError
from cfw.core.prices import JobPrice, PoolPrice
from cfw.core.render import render_text
from cfw.core.rootmodule import ModuleCall, RootSpec

FORMULA_TEMPLATE = "azure-batch/autoscale.formula.j2"
# https://ACCOUNT.REGION.batch.azure.com (or a sovereign cloud's batch.* domain)
BATCH_URL_RE = re.compile(r"^https://([a-z0-9]{3,24})\.([a-z0-9]+)\.batch\.[a-z0-9.-]+/?$")
# Terraform's azurerm provider reads ARM_*; the Azure SDKs and CLI use AZURE_*
_ARM_FROM_AZURE = (
    ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID"),
    ("ARM_TENANT_ID", "AZURE_TENANT_ID"),
    ("ARM_CLIENT_ID", "AZURE_CLIENT_ID"),
    ("ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
    ("ARM_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PATH"),
)


def first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def batch_url_parts(url: str) -> tuple[str, str]:
    """(account name, region) of a Batch account URL such as AZ_BATCH_ACCOUNT_URL."""
    match = BATCH_URL_RE.match(url.strip().lower())
    if not match:
        raise UserError(
            f"AZ_BATCH_ACCOUNT_URL {url!r} is not a Batch account URL",
            "expected https://ACCOUNT.REGION.batch.azure.com, or unset it",
        )
    return match.group(1), match.group(2)


def env_region(environ: Mapping[str, str]) -> str | None:
    """The location from AZURE_LOCATION, AZ_BATCH_LOCATION or AZ_BATCH_ACCOUNT_URL."""
    region = first(environ, "AZURE_LOCATION", "AZ_BATCH_LOCATION")
    if not region and environ.get("AZ_BATCH_ACCOUNT_URL"):
        region = batch_url_parts(environ["AZ_BATCH_ACCOUNT_URL"])[1]
    return region


def account_name(env_id: str, kind: str) -> str:
    """A globally unique-ish account name from the environment id: the storage account
    ("storage"), the Batch account ("batch"), the guard Function's host storage ("guard")."""
    name, _, suffix = env_id.rpartition("-")
    stem = re.sub(r"[^a-z0-9]", "", name.lower())
    tag = {"storage": "st", "batch": "ba", "guard": "gu"}[kind]
    return f"cfw{tag}{stem[: 24 - 5 - len(suffix)]}{suffix}"


def names(config: AzureBatchConfig, env_id: str, name: str) -> dict[str, str]:
    return {
        "resource_group": config.resource_group or f"cfw-{name}",
        "batch_account": config.batch_account_name or account_name(env_id, "batch"),
        "storage_account": config.storage_account_name or account_name(env_id, "storage"),
        "guard_storage_account": account_name(env_id, "guard"),
    }


def autoscale_formula(
    config: AzureBatchConfig, pool: PoolConfig, expires_at: datetime | None = None
) -> str:
    """The pool's autoscale formula, rendered from templates/azure-batch/; with the
    environment's expiry, it keeps no node from then on."""
    return render_text(
        FORMULA_TEMPLATE,
        comment="//",
        pool_id=pool.pool_id,
        vm_size=pool.vm_size,
        slots=config.slots(pool),
        slots_per_task=config.slots_per_task(pool),
        tasks_per_node=config.tasks_on_a_node(pool),
        window_minutes=config.autoscale.window_minutes,
        interval_minutes=config.autoscale.evaluation_interval_minutes,
        max_dedicated=pool.max_dedicated_nodes,
        max_low_priority=pool.max_low_priority_nodes,
        prefer_low_priority=pool.prefer_low_priority,
        expires_at=expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if expires_at else "",
    )


class AzureBatchKind(Kind[AzureBatchConfig]):
    name = "azure-batch"
    label = "Azure Batch"
    summary = "an Azure Batch account with autoscaling pools (scale to zero); jobs are Batch tasks"
    config_model = AzureBatchConfig
    root = RootSpec(
        modules=(ModuleCall("azure-batch", "azure_batch"),),
        providers=("azurerm",),
        variables={
            "subscription_id": "Azure subscription (null: ARM_SUBSCRIPTION_ID).",
            "tenant_id": "Entra tenant (null: ARM_TENANT_ID or the CLI's).",
        },
        # secrets, and a location taken from AZURE_LOCATION, come as TF_VAR_*
        env_inputs=("location", "start_task_sas_url", "registry_password"),
    )
    # environment settings of a Batch task are readable by whoever can read the job
    capabilities = Capabilities(gpu=True, spot=True, machine_types=True)
    backend_path = "cfw.backends.azure_batch.backend:AzureBatchBackend"
    translate_path = "cfw.backends.azure_batch.translate:translate"
    extra = "azure"
    default_jobs = 200

    # -- config -----------------------------------------------------------------------------
    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, names_ in (
            ("subscription_id", ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")),
            ("tenant_id", ("AZURE_TENANT_ID", "ARM_TENANT_ID")),
            ("region", ("AZURE_LOCATION", "AZ_BATCH_LOCATION")),
            ("batch_account_name", ("AZ_BATCH_ACCOUNT_NAME",)),
            ("tasks_per_node", ("BATCH_TASKS_PER_NODE",)),
            ("node_fill_type", ("BATCH_NODE_FILL_TYPE",)),
            ("image", ("BATCH_POOL_VM_CONTAINER_IMAGE",)),
        ):
            value = first(environ, *names_)
            if value:
                values[key] = value.capitalize() if key == "node_fill_type" else value
        if environ.get("AZ_BATCH_ACCOUNT_URL"):
            account, region = batch_url_parts(environ["AZ_BATCH_ACCOUNT_URL"])
            named = values.setdefault("batch_account_name", account)
            if named != account:
                raise UserError(
                    f"AZ_BATCH_ACCOUNT_URL names Batch account {account!r} but "
                    f"AZ_BATCH_ACCOUNT_NAME is {named!r}",
                    "make them name the same account, or unset one",
                )
            values.setdefault("region", region)
        if first(environ, "BATCH_POOL_VM_SIZE"):
            values["pools"] = [{"vm_size": environ["BATCH_POOL_VM_SIZE"]}]
        registry = {}
        if first(environ, "BATCH_CONTAINER_REGISTRY", "BATCH_CONTAINER_REGISTRY_URL"):
            registry["server"] = first(
                environ, "BATCH_CONTAINER_REGISTRY", "BATCH_CONTAINER_REGISTRY_URL"
            )
        if first(environ, "BATCH_CONTAINER_REGISTRY_USER"):
            registry["username"] = environ["BATCH_CONTAINER_REGISTRY_USER"]
        if registry:
            values["registry"] = registry
        return values

    def preflight(self, config: AzureBatchConfig, environ: Mapping[str, str]) -> None:
        if not (
            config.subscription_id or first(environ, "AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")
        ):
            raise UserError(
                "no Azure subscription for azure-batch",
                "set subscription_id in the config, --set subscription_id=ID, or "
                "AZURE_SUBSCRIPTION_ID",
            )
        if not (config.region or env_region(environ)):
            raise UserError(
                "no Azure location for azure-batch",
                "set region in the config, --region westeurope, or AZURE_LOCATION",
            )
        from cfw.backends.azure_batch import cloud

        cloud.check_credentials(environ)
        if not config.image:
            raise UserError(
                "azure-batch needs a job image with Snakemake and snakemake-storage-plugin-azure",
                "build images/Dockerfile, push it to your registry and set image: (or "
                "--set image=REGISTRY/cfw-job:TAG)",
            )
        start = config.start_task
        sas = environ.get(start.sas_url_env)
        if start.script is not None and sas:
            raise UserError(
                f"both start_task.script and {start.sas_url_env} are set",
                "keep one: the module uploads the script, or nodes fetch the SAS URL",
            )
        if start.script is not None and not Path(start.script).expanduser().is_file():
            raise UserError(
                f"start_task.script {start.script} is not a file", "give the path of a shell script"
            )
        if sas and not sas.startswith("https://"):
            raise UserError(
                f"{start.sas_url_env} is not an https:// URL",
                "give the blob's SAS URL (https://ACCOUNT.blob.core.windows.net/...)",
            )
        reg = config.registry
        if reg.server and not (reg.username or reg.acr_id):
            raise UserError(
                f"registry {reg.server}: the pool's identity can pull only with AcrPull on it",
                "set registry.acr_id (its resource id), or registry.username with "
                f"{reg.password_env}",
            )
        if reg.username and not environ.get(reg.password_env):
            raise UserError(
                f"registry user {reg.username!r} is set but {reg.password_env} is empty",
                f"export {reg.password_env}, or drop the user to pull with the pool's identity",
            )

    def terraform_env(self, config: AzureBatchConfig, environ: Mapping[str, str]) -> dict[str, str]:
        """Secrets and credentials reach Terraform as environment variables, never tfvars."""
        env = {
            arm: environ[azure]
            for arm, azure in _ARM_FROM_AZURE
            if not environ.get(arm) and environ.get(azure)
        }
        if not config.region and env_region(environ):
            env["TF_VAR_location"] = env_region(environ) or ""
        sas = environ.get(config.start_task.sas_url_env)
        if sas:
            env["TF_VAR_start_task_sas_url"] = sas
        if config.registry.username and environ.get(config.registry.password_env):
            env["TF_VAR_registry_password"] = environ[config.registry.password_env]
        return env

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: AzureBatchConfig) -> RootSpec:
        """The Batch account, and its guard (modules/azure-guard) unless guard.enabled is
        false."""
        return guard_deploy.with_guard(self.root, config)

    def render_files(self, config: AzureBatchConfig, outdir: Path) -> None:
        """The guard Function's zip, in guard/ next to the root module."""
        guard_deploy.render(config, outdir)

    def tfvars(self, config: AzureBatchConfig, ident: Identity, workdir: Path) -> dict[str, Any]:
        n = names(config, ident.env_id, ident.name)
        script = None
        if config.start_task.script is not None:
            path = Path(config.start_task.script).expanduser()
            script = (path if path.is_absolute() else workdir / path).read_text()
        values: dict[str, Any] = {
            "name": ident.name,
            "env_id": ident.env_id,
            "labels": ident.labels(config.labels),
            "subscription_id": config.subscription_id,
            "tenant_id": config.tenant_id,
            "resource_group_name": n["resource_group"],
            "batch_account_name": n["batch_account"],
            "storage_account_name": n["storage_account"],
            "containers": [config.data_container, config.logs_container],
            "pools": [
                {
                    "id": pool.pool_id,
                    "vm_size": pool.vm_size,
                    "task_slots_per_node": config.slots(pool),
                    "autoscale_formula": autoscale_formula(config, pool, ident.expires_at),
                }
                for pool in config.pools
            ],
            "autoscale_evaluation_interval": f"PT{config.autoscale.evaluation_interval_minutes}M",
            "node_image": config.node_image.model_dump(),
            "node_fill_type": config.node_fill_type,
            "container_image": self.default_image(config),
            "registry": {
                "server": config.registry.server,
                "username": config.registry.username,
            }
            if config.registry.server
            else None,
            "acr_id": config.registry.acr_id,
            "create_registry": config.registry.create_acr,
            "start_task": {
                "command_line": config.start_task.command_line,
                "script": script,
            },
            **guard_deploy.tfvars(
                config,
                ident.labels(config.labels),
                n["guard_storage_account"],
                config.data_container,
            ),
        }
        if config.region:
            values["location"] = config.region
        return values

    def output_placeholders(
        self, config: AzureBatchConfig, ident: Identity | None
    ) -> dict[str, Any]:
        env_id = ident.env_id if ident else f"{config.name or self.name}-adhoc"
        n = names(config, env_id, config.name or self.name)
        blob = f"https://{n['storage_account']}.blob.core.windows.net"
        return {
            "batch_account_url": f"https://{n['batch_account']}.<region>.batch.azure.com",
            "batch_account_id": "<batch-account-resource-id>",
            "batch_account_name": n["batch_account"],
            "batch_pool_ids": [p.pool_id for p in config.pools],
            "storage_account_name": n["storage_account"],
            "storage_blob_endpoint": f"{blob}/",
            "storage_container_urls": {
                c: f"{blob}/{c}" for c in (config.data_container, config.logs_container)
            },
            "storage_container_ids": {
                c: f"<container-resource-id:{c}>"
                for c in (config.data_container, config.logs_container)
            },
            "identity_id": "<identity-resource-id>",
            "identity_client_id": "<identity-client-id>",
            "resource_group_name": n["resource_group"],
            "subscription_id": config.subscription_id or "<subscription-id>",
        }

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: AzureBatchConfig,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        prefix = config.storage_prefix or (
            f"az://{config.data_container}/{_slug(getpass.getuser())}/{_slug(workdir.name)}"
        )
        env = {"SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME": str(outputs["storage_account_name"])}
        return StorageSpec(provider="azure", prefix=prefix, env=env)

    # -- teardown and status ----------------------------------------------------------------
    # -- spot -------------------------------------------------------------------------------
    def on_spot(self, spec: JobSpec, ctx: EnvContext[AzureBatchConfig]) -> bool:
        """A preemptible job whose pool has low-priority nodes (it may land on one)."""
        from cfw.backends.azure_batch import spot

        return spec.preemptible and spot.pool_of(spec, ctx).max_low_priority_nodes > 0

    def on_demand_problem(self, spec: JobSpec, ctx: EnvContext[AzureBatchConfig]) -> str | None:
        """The fallback needs a pool of dedicated nodes only (a mixed pool may put the job
        on a low-priority node again)."""
        from cfw.backends.azure_batch import spot

        return spot.on_demand_problem(spec, ctx)

    def price(self, spec: JobSpec, ctx: EnvContext[AzureBatchConfig]) -> JobPrice:
        """The task's slots' share of a node of the pool it goes to."""
        from cfw.backends.azure_batch import price

        return price.job_price(spec, ctx, self.price_region(ctx.config))

    def pool_prices(self, config: AzureBatchConfig) -> list[PoolPrice]:
        from cfw.backends.azure_batch import price

        return price.pool_prices(config, self.price_region(config))

    def price_region(self, config: AzureBatchConfig) -> str | None:
        return config.region or env_region(os.environ)

    def leftovers(
        self,
        config: AzureBatchConfig,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        from cfw.backends.azure_batch import cloud

        subscription = (
            outputs.get("subscription_id")
            or config.subscription_id
            or first(environ, "AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")
        )
        return cloud.tagged_resources(subscription or "", ident.env_id, config, environ)

    # -- the guard: heartbeats in the data container, tasks by the jobs' metadata ----------
    def heartbeat_store(self, ctx: EnvContext[AzureBatchConfig], environ: Mapping[str, str]):
        from cfw.backends.azure_batch import guard

        return guard.blob_store(ctx.config, ctx.outputs, environ), ""

    def guard_adapter(self, ctx: EnvContext[AzureBatchConfig], environ: Mapping[str, str]):
        from cfw.backends.azure_batch import guard

        return guard.adapter_for(ctx.config, ctx.outputs, environ, ctx.env_id)

    def status_details(
        self, config: AzureBatchConfig, outputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        from cfw.backends.azure_batch import cloud

        return cloud.pool_details(config, outputs, os.environ)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"


KIND = AzureBatchKind()

"""Azure's control plane for the azure-batch kind: which credentials there are (for
Terraform's azurerm provider and for the SDKs), and Resource Manager reads (pool state for
`cfw status`, what still carries the environment's id after `down`). Not job calls: those
are in client.py.

The Azure SDK is imported inside the functions that call Azure (with the install hint), so
that the credential checks of `cfw up` work with only the core installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cfw.backends.azure_batch.status import wire
from cfw.backends.sdk import require
from cfw.core.errors import UserError, WorkFailed

if TYPE_CHECKING:  # not at run time: the guard's Function zips this module without pydantic
    from cfw.backends.azure_batch.config import AzureBatchConfig

AZ_TIMEOUT = 20  # seconds for `az account show`: it reads the CLI's local cache, no network
CREDENTIALS_FIX = (
    "run `az login`, or set ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID (or "
    "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID) for a service principal"
)
RESOURCE_LISTS_API = "2021-04-01"  # resource groups and resources, filtered by tag


# -- credentials ------------------------------------------------------------------------------
def service_principal(environ: Mapping[str, str]) -> bool:
    """Credentials the azurerm provider takes without the Azure CLI."""
    client = environ.get("ARM_CLIENT_ID") or environ.get("AZURE_CLIENT_ID")
    secret = any(
        environ.get(name)
        for name in (
            "ARM_CLIENT_SECRET",
            "AZURE_CLIENT_SECRET",
            "ARM_CLIENT_CERTIFICATE_PATH",
            "AZURE_CLIENT_CERTIFICATE_PATH",
        )
    )
    oidc = environ.get("ARM_USE_OIDC") or environ.get("ARM_USE_MSI")
    return bool((client and secret) or (oidc and oidc.lower() == "true"))


def check_credentials(environ: Mapping[str, str]) -> None:
    """Raise UserError unless Terraform has credentials: a service principal (or OIDC,
    managed identity) in the environment, else an Azure CLI that is logged in."""
    if service_principal(environ):
        return
    az = shutil.which("az", path=environ.get("PATH"))
    if not az:
        raise UserError("no Azure credentials for Terraform's azurerm provider", CREDENTIALS_FIX)
    check_az_login(az, environ)


def check_az_login(az: str, environ: Mapping[str, str]) -> None:
    """The Azure CLI is the only credential source: is it logged in? `az account show`
    answers from its local cache (offline-safe); a CLI that hangs or cannot start is left
    for Terraform to report."""
    try:
        result = subprocess.run(
            [az, "account", "show", "--output", "json"],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=AZ_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    if result.returncode != 0:
        said = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "")
        said = f": {said[:160]}" if said else ""
        raise UserError(
            f"the Azure CLI is not logged in (`az account show` exited {result.returncode}{said})",
            CREDENTIALS_FIX,
        )


def token_credential(environ: Mapping[str, str]) -> Any:
    """Entra ID credentials from the usual chain (kept in one place so tests can swap it):
    AZURE_* service principal, workload or managed identity, `az login`."""
    identity = require("azure.identity", "azure")
    return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)


def error_code(exc: Any) -> str:
    """The service's error code of an HttpResponseError (else its HTTP status)."""
    return str((getattr(exc, "error", None) and exc.error.code) or exc.status_code or "error")


# -- Resource Manager -------------------------------------------------------------------------
def mgmt_client(subscription_id: str, arm_endpoint: str, environ: Mapping[str, str]) -> Any:
    batch_mgmt = require("azure.mgmt.batch", "azure")
    base = arm_endpoint.rstrip("/")
    return batch_mgmt.BatchManagementClient(
        token_credential(environ),
        subscription_id,
        base_url=base,
        credential_scopes=[f"{base}/.default"],
    )


def pool_details(
    config: AzureBatchConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Allocation state, node counts and autoscale/resize errors of each pool."""
    azure_errors = require("azure.core.exceptions", "azure")
    identity = require("azure.identity", "azure")
    subscription = str(outputs.get("subscription_id") or config.subscription_id or "")
    group, account = outputs.get("resource_group_name"), outputs.get("batch_account_name")
    if not (subscription and group and account):
        return {"pools": "unknown (the environment has no outputs yet)"}
    client = mgmt_client(subscription, config.arm_endpoint, environ)
    details: dict[str, Any] = {}
    for pool_id in outputs.get("batch_pool_ids") or []:
        try:
            pool = client.pool.get(group, account, pool_id)
        except azure_errors.ResourceNotFoundError:
            details[f"pool {pool_id}"] = "missing (deleted outside Terraform?)"
            continue
        except (
            azure_errors.ClientAuthenticationError,
            identity.CredentialUnavailableError,
        ) as exc:
            return {
                "pools": f"unknown: no usable Azure credentials ({type(exc).__name__}); "
                "run `az login` or set AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"
            }
        except azure_errors.HttpResponseError as exc:
            details[f"pool {pool_id}"] = f"could not read it: {error_code(exc)}"
            continue
        except azure_errors.AzureError as exc:
            return {"pools": f"unknown: Azure Resource Manager did not answer ({exc})"}
        details[f"pool {pool_id}"] = describe_pool(pool)
    return details


def describe_pool(pool: Any) -> str:
    parts = [
        f"{pool.vm_size}",
        f"allocation {wire(pool.allocation_state) or '?'}",
        f"nodes {pool.current_dedicated_nodes or 0} dedicated + "
        f"{pool.current_low_priority_nodes or 0} low-priority",
    ]
    scale = pool.scale_settings.auto_scale if pool.scale_settings else None
    if scale is not None and scale.evaluation_interval is not None:
        minutes = int(scale.evaluation_interval.total_seconds() // 60)
        parts.append(f"autoscale every {minutes} min")
    run = pool.auto_scale_run
    if run is not None and run.error is not None:
        parts.append(f"autoscale error {run.error.code}: {run.error.message}")
    resize = pool.resize_operation_status
    for error in (resize.errors or []) if resize is not None else []:
        parts.append(f"resize error {error.code}: {error.message}")
    return "; ".join(parts)


def tagged_resources(
    subscription_id: str, env_id: str, config: AzureBatchConfig, environ: Mapping[str, str]
) -> list[str]:
    """Resource groups and resources that still carry cfw-id=ENV_ID."""
    if not subscription_id:
        return []
    azure_errors = require("azure.core.exceptions", "azure")
    identity = require("azure.identity", "azure")
    try:
        return _tagged(subscription_id, env_id, config, environ)
    except (azure_errors.AzureError, identity.CredentialUnavailableError) as exc:
        raise WorkFailed(
            f"could not list what is left of {env_id} in subscription {subscription_id}: {exc}",
            "check the Azure credentials (az login), then run `cfw down` again",
        ) from exc


def _tagged(
    subscription_id: str, env_id: str, config: AzureBatchConfig, environ: Mapping[str, str]
) -> list[str]:
    rest = require("azure.core.rest", "azure")
    client = mgmt_client(subscription_id, config.arm_endpoint, environ)
    pipeline = client._client  # the ARM pipeline: generic GETs with the same auth and retries
    found: list[str] = []
    query = f"tagName eq 'cfw-id' and tagValue eq '{env_id}'"
    for path in (
        f"/subscriptions/{subscription_id}/resourcegroups",
        f"/subscriptions/{subscription_id}/resources",
    ):
        url: str | None = f"{config.arm_endpoint.rstrip('/')}{path}"
        params: dict[str, str] | None = {"api-version": RESOURCE_LISTS_API, "$filter": query}
        while url:
            response = pipeline.send_request(rest.HttpRequest("GET", url, params=params))
            response.raise_for_status()
            body = response.json()
            found += [item["id"] for item in body.get("value", [])]
            url, params = body.get("nextLink"), None
    return found

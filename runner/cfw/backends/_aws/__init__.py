"""AWS code shared by the kinds that run on AWS (tibanna, tes) and by local's S3 storage:
the region and endpoint the environment names, the S3 plugin's settings, and the one way
to open a boto3 session.

Importable with only the core installed: boto3 is imported when a session is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cfw.backends.sdk import require

if TYPE_CHECKING:
    from boto3.session import Session

# Snakemake's S3 storage plugin setting -> the AWS variable it comes from
S3_CREDENTIAL_ENV = (
    ("ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ("SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
    ("TOKEN", "AWS_SESSION_TOKEN"),
)


def aws_region(environ: Mapping[str, str]) -> str | None:
    """The AWS region the environment names, as boto3 and the aws provider read it."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")


def session(region: str | None, environ: Mapping[str, str], *, extra: str = "aws") -> Session:
    """A boto3 session in ``region``, else in the region the environment names; without
    boto3, the install hint of the kind's pip ``extra``."""
    boto3 = require("boto3", extra)
    return boto3.session.Session(region_name=region or aws_region(environ))


def botocore_errors(*, extra: str = "aws") -> ModuleType:
    """botocore's exceptions (ClientError, ...), for a client's ``except`` clauses; boto3 is
    asked for first, so that a missing SDK is named as the package the extra installs."""
    require("boto3", extra)
    return require("botocore.exceptions", extra)


def error_code(exc: Any) -> str:
    """The AWS error code of a botocore ClientError ("" when it has none)."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def endpoint_url(environ: Mapping[str, str], configured: str | None = None) -> str | None:
    """An S3-compatible endpoint: the configured one, else AWS_ENDPOINT_URL(_S3)."""
    return configured or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")


def s3_storage_env(
    environ: Mapping[str, str],
    *,
    endpoint: str | None = None,
    region: str | None = None,
    credentials: bool = True,
) -> dict[str, str]:
    """The SNAKEMAKE_STORAGE_S3_* settings (endpoint, region and, with ``credentials``, the
    AWS keys of ``environ``) that Snakemake's S3 plugin reads from its environment."""
    env: dict[str, str] = {}
    endpoint = endpoint_url(environ, endpoint)
    if endpoint:
        env["SNAKEMAKE_STORAGE_S3_ENDPOINT_URL"] = endpoint
    if credentials:
        for ours, theirs in S3_CREDENTIAL_ENV:
            if environ.get(theirs):
                env[f"SNAKEMAKE_STORAGE_S3_{ours}"] = environ[theirs]
    if region:
        env["SNAKEMAKE_STORAGE_S3_REGION"] = str(region)
    return env

"""AWS settings shared by the kinds that run on AWS (tibanna, tes) and by local's S3 storage.

No SDK here: boto3 is imported by each kind's client, lazily.
"""

from __future__ import annotations

from collections.abc import Mapping

# Snakemake's S3 storage plugin setting -> the AWS variable it comes from
S3_CREDENTIAL_ENV = (
    ("ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ("SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
    ("TOKEN", "AWS_SESSION_TOKEN"),
)


def aws_region(environ: Mapping[str, str]) -> str | None:
    """The AWS region the environment names, as boto3 and the aws provider read it."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")


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

"""The AWS side of the `tes` kind (boto3): the provisioned server's credentials and TLS
certificate at run time, and the check after `down` that nothing of the environment is left.
No TES API calls (those are in client.py).

Endpoints come from the standard chain (``AWS_ENDPOINT_URL`` reaches moto, LocalStack or a
private cloud); nothing here is test-specific.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cfw.backends._aws import botocore_errors, cleanup, error_code, guard_deploy, session
from cfw.backends._aws.cleanup import Finder, Leftover
from cfw.core.errors import UserError, WorkFailed

_errors = botocore_errors(extra="tes")
BotoCoreError = _errors.BotoCoreError
ClientError = _errors.ClientError
NoCredentialsError = _errors.NoCredentialsError

CERT_PENDING = "pending"


def read_password(store: str, name: str, region: str, environ: Mapping[str, str]) -> str:
    """A basic-auth password from Secrets Manager or SSM (kept in memory only)."""
    try:
        if store == "ssm":
            ssm = session(region, environ, extra="tes").client("ssm")
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        sm = session(region, environ, extra="tes").client("secretsmanager")
        return sm.get_secret_value(SecretId=name)["SecretString"]
    except NoCredentialsError as exc:
        raise UserError(
            "no AWS credentials to read the Funnel password with",
            "configure AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID), or set "
            "FUNNEL_SERVER_USER and FUNNEL_SERVER_PASSWORD",
        ) from exc
    except ClientError as exc:
        code = error_code(exc) or "error"
        raise UserError(
            f"cannot read the Funnel password {name} from {store} ({code})",
            "check your AWS permissions, or set FUNNEL_SERVER_USER and FUNNEL_SERVER_PASSWORD",
        ) from None


def read_certificate(parameter: str, region: str, environ: Mapping[str, str]) -> str | None:
    """The server's self-signed certificate (PEM), or None while the server boots."""
    try:
        ssm = session(region, environ, extra="tes").client("ssm")
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        raise WorkFailed(
            f"cannot read the server's TLS certificate from SSM {parameter}: {exc}"
        ) from None
    return None if value.strip() == CERT_PENDING else value


# -- after destroy: what still carries the environment's id, removed -----------------------
def find(aws: Any, env_id: str, prefix: str) -> list[Leftover]:
    """Resources of the environment that still carry cfw-id=<env_id>: EC2 by the tag alone,
    the others among the names the module gives them (all start with PREFIX, cfw-<env id>)."""
    finder = Finder(aws, env_id)

    def named(name: str) -> bool:
        return name.startswith(f"{prefix}-")

    return [
        *finder.ec2(),
        *finder.buckets(named),
        *finder.tables(named),
        *finder.batch(named),
        *finder.iam(named),  # (the guard's roles too: cfw-<env id>-guard-*)
        *finder.secrets(f"{prefix}/"),
        *finder.parameters(f"/{prefix}"),
        *guard_deploy.find(aws, env_id, roles=False),
    ]


def leftovers(
    region: str | None, env_id: str, prefix: str, environ: Mapping[str, str]
) -> list[str]:
    """:func:`find`, as the lines `cfw down` shows."""
    aws = session(region, environ, extra="tes")
    return [str(item) for item in find(aws, env_id, prefix)]


def remove_leftovers(
    region: str | None,
    env_id: str,
    prefix: str,
    environ: Mapping[str, str],
    say: Callable[[str], None],
) -> list[str]:
    """Remove what :func:`find` lists; what is still there after, each with why and the
    command that removes it."""
    aws = session(region, environ, extra="tes")
    return cleanup.finish(aws, lambda: find(aws, env_id, prefix), env_id, say)

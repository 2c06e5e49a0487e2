"""The one domain exception hierarchy, turned into a message and exit code at the CLI edge."""

from __future__ import annotations


class CfwError(Exception):
    """Base of every error cfw reports without a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UserError(CfwError):
    """A mistake the user can fix (bad config, unknown name, missing credentials): exit 2."""

    exit_code = 2


class WorkFailed(CfwError):
    """The work itself failed (a Terraform apply, a job): exit 1."""

    exit_code = 1


class Interrupted(CfwError):
    """The user interrupted the work (SIGINT/SIGTERM): exit 130."""

    exit_code = 130


def missing_sdk(package: str, extra: str) -> UserError:
    return UserError(
        f"the Python package {package!r} is not installed",
        f"install it with: pip install 'cfw[{extra}]'",
    )

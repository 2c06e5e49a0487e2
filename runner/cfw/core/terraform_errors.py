"""A failed Terraform command -> the CfwError a user reads: who holds a state lock, what
the user must configure (a provider mirror, credentials), else Terraform's own diagnostic."""

from __future__ import annotations

import re

from cfw.core.errors import UserError, WorkFailed
from cfw.core.terraform_ui import RunResult

# Text in init/validate failures that means "the user must configure something".
_USER_FIXABLE = (
    (
        "Failed to query available provider packages",
        "a provider could not be installed",
        "configure a provider mirror: set terraform.plugin_mirror in the environment's config "
        "or CFW_TF_PLUGIN_MIRROR",
    ),
    (
        "Failed to install provider",
        "a provider could not be installed",
        "configure a provider mirror: set terraform.plugin_mirror or CFW_TF_PLUGIN_MIRROR",
    ),
    (
        "No valid credential sources found",
        "no cloud credentials were found",
        "configure the provider's credentials (for AWS: AWS_PROFILE or AWS_ACCESS_KEY_ID)",
    ),
)


def failure(what: str, result: RunResult) -> Exception:
    """The error to raise for WHAT (e.g. "terraform apply") that failed with RESULT."""
    errors = result.errors
    text = result.text + "".join(str(d) for d in errors)
    lock = lock_holder(text)
    if lock:
        return UserError(
            f"{what} failed: the environment's state is locked ({lock})",
            "another `cfw up`/`down` is working on this shared environment: wait for it, "
            "or retry with --lock-timeout SECONDS to wait longer",
        )
    detail = "; ".join(str(d) for d in errors[:3]) if errors else last_lines(text)
    for needle, problem, fix in _USER_FIXABLE:
        if needle in text or any(needle in str(d) for d in errors):
            return UserError(f"{what} failed: {problem} ({detail})", fix)
    return WorkFailed(f"{what} failed: {detail}")


def lock_holder(text: str) -> str | None:
    """Who holds the state lock, from Terraform's "Error acquiring the state lock" text."""
    if "Error acquiring the state lock" not in text:
        return None
    fields = {}
    for key in ("ID", "Who", "Operation", "Created"):
        match = re.search(
            rf"\b{key}:\s+(.+?)(?:\s{{2,}}|\n|\s(?:ID|Path|Operation|Who|Version|Created|Info):|$)",
            text,
        )
        if match:
            fields[key] = match.group(1).strip()
    if not fields:
        return "by another Terraform run"
    parts = [f"held by {fields.get('Who', '?')}"]
    if "Operation" in fields:
        parts.append(fields["Operation"].removeprefix("OperationType").lower())
    if "Created" in fields:
        parts.append(f"since {fields['Created']}")
    if "ID" in fields:
        parts.append(f"lock id {fields['ID']}")
    return ", ".join(parts)


def last_lines(text: str, n: int = 3) -> str:
    """The last N of the "Error" lines of Terraform's text output (of all its lines if there
    is none), the boxes around diagnostics stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and "│" not in line[:2]]
    cleaned = [line.lstrip("│╷╵ ").strip() for line in text.splitlines()]
    cleaned = [line for line in cleaned if line]
    picked = [line for line in cleaned if line.startswith("Error")] or cleaned or lines
    return " ".join(picked[-n:]) if picked else "no output"
